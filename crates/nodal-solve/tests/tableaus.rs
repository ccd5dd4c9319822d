//! Order conditions (all rooted trees up to each method's order), convergence order of every
//! tableau with fixed steps, and the order of the dense output.

use nodal_solve::tableau::{DenseOutput, ErrorEstimator, Tableau};
use nodal_solve::{FnDynamics, METHODS, RmsNorm, SolveOptions, solve};

/// A rooted tree as the sorted list of its subtrees.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Tree(Vec<Tree>);

impl Tree {
    fn order(&self) -> usize {
        1 + self.0.iter().map(Tree::order).sum::<usize>()
    }
    fn gamma(&self) -> f64 {
        self.order() as f64 * self.0.iter().map(Tree::gamma).product::<f64>()
    }
    /// Stage vector of elementary weights: Phi_i = prod_children (A Phi(child))_i.
    fn phi(&self, a: &[Vec<f64>]) -> Vec<f64> {
        let s = a.len();
        let mut out = vec![1.0; s];
        for child in &self.0 {
            let p = child.phi(a);
            for i in 0..s {
                out[i] *= (0..s).map(|j| a[i][j] * p[j]).sum::<f64>();
            }
        }
        out
    }
}

/// All rooted trees with exactly `n` vertices (unique up to isomorphism).
fn trees(n: usize) -> Vec<Tree> {
    if n == 1 {
        return vec![Tree(vec![])];
    }
    // Children form a multiset of trees with total order n - 1; build as sorted sequences.
    let mut out = Vec::new();
    fn build(rem: usize, min: Option<&Tree>, acc: &mut Vec<Tree>, out: &mut Vec<Tree>) {
        if rem == 0 {
            out.push(Tree(acc.clone()));
            return;
        }
        for k in 1..=rem {
            for t in trees(k) {
                if let Some(m) = min
                    && (t.order(), &t) < (m.order(), m)
                {
                    continue;
                }
                acc.push(t.clone());
                build(rem - k, Some(&t), acc, out);
                acc.pop();
            }
        }
    }
    build(n - 1, None, &mut Vec::new(), &mut out);
    out.sort();
    out.dedup();
    out
}

fn full_a(tab: &Tableau) -> Vec<Vec<f64>> {
    let s = tab.c.len();
    (0..s).map(|i| (0..s).map(|j| tab.a[i].get(j).copied().unwrap_or(0.0)).collect()).collect()
}

fn max_residual(tab: &Tableau, b: &[f64], order: usize) -> f64 {
    let a = full_a(tab);
    let mut worst = 0.0f64;
    for n in 1..=order {
        for t in trees(n) {
            let phi = t.phi(&a);
            let lhs: f64 = b.iter().zip(&phi).map(|(b, p)| b * p).sum();
            worst = worst.max((lhs - 1.0 / t.gamma()).abs());
        }
    }
    worst
}

#[test]
fn tree_counts_are_the_known_sequence() {
    let counts: Vec<usize> = (1..=8).map(|n| trees(n).len()).collect();
    assert_eq!(counts, vec![1, 1, 2, 4, 9, 20, 48, 115]);
}

#[test]
fn order_conditions_hold_and_the_next_order_fails() {
    for tab in METHODS {
        let s = tab.c.len();
        assert_eq!(tab.a.len(), s, "{}", tab.name);
        assert_eq!(tab.b.len(), s, "{}", tab.name);
        for (i, row) in tab.a.iter().enumerate() {
            assert_eq!(row.len(), i, "{} row {i}", tab.name);
            let sum: f64 = row.iter().sum();
            assert!((sum - tab.c[i]).abs() < 1e-14, "{}: row sum {i}", tab.name);
        }
        let p = tab.order as usize;
        let r = max_residual(tab, tab.b, p);
        assert!(r < 1e-13, "{}: order {p} residual {r}", tab.name);
        if p < 8 {
            let r_next = max_residual(tab, tab.b, p + 1);
            assert!(r_next > 1e-6, "{}: claims order {p} but satisfies {}", tab.name, p + 1);
        }
        // The embedded solution b_hat = b - e has its stated order.
        let embedded = match tab.error {
            ErrorEstimator::None => None,
            ErrorEstimator::Embedded(e) => Some(e),
            ErrorEstimator::Dop853 { e5, .. } => Some(e5),
        };
        if let (Some(e), Some(q)) = (embedded, tab.error_order) {
            let bhat: Vec<f64> = tab.b.iter().zip(e).map(|(b, e)| b - e).collect();
            let r = max_residual(tab, &bhat, q as usize);
            assert!(r < 1e-12, "{}: embedded order {q} residual {r}", tab.name);
        }
        if tab.fsal {
            let last = tab.a[s - 1];
            for j in 0..s - 1 {
                assert_eq!(last[j], tab.b[j], "{}: FSAL row", tab.name);
            }
        }
        if let DenseOutput::Polynomial { coeffs, extra_c, extra_a, .. } = tab.dense {
            assert_eq!(coeffs.len(), s + extra_c.len());
            for (m, row) in extra_a.iter().enumerate() {
                assert_eq!(row.len(), s + m);
                assert!((row.iter().sum::<f64>() - extra_c[m]).abs() < 1e-13);
            }
            for (i, row) in coeffs.iter().enumerate() {
                let at1: f64 = row.iter().sum();
                let b = tab.b.get(i).copied().unwrap_or(0.0);
                assert!((at1 - b).abs() < 1e-12, "{}: b_{i}(1) = {at1} != {b}", tab.name);
            }
        }
        assert!(!tab.citation.is_empty());
    }
}

/// y' = y cos t, y(0) = 1: y = exp(sin t) (DETEST A3).
fn a3(t: f64) -> f64 {
    t.sin().exp()
}

fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (lx, ly): (Vec<f64>, Vec<f64>) = xs.iter().zip(ys).map(|(x, y)| (x.ln(), y.ln())).unzip();
    let mx = lx.iter().sum::<f64>() / n;
    let my = ly.iter().sum::<f64>() / n;
    let num: f64 = lx.iter().zip(&ly).map(|(x, y)| (x - mx) * (y - my)).sum();
    let den: f64 = lx.iter().map(|x| (x - mx) * (x - mx)).sum();
    num / den
}

/// Step counts whose errors sit well above round-off and in the asymptotic regime.
fn step_counts(order: u32) -> Vec<usize> {
    match order {
        1 => vec![200, 400, 800, 1600],
        2 => vec![50, 100, 200, 400],
        3 => vec![25, 50, 100, 200],
        4 => vec![16, 32, 64, 128],
        5 => vec![48, 64, 96, 128],
        _ => vec![6, 8, 12, 16],
    }
}

#[test]
fn fixed_step_convergence_order_of_every_tableau() {
    let t_end = 2.0;
    for tab in METHODS {
        let (mut hs, mut errs, mut derrs) = (vec![], vec![], vec![]);
        for n in step_counts(tab.order) {
            let h = t_end / n as f64;
            let mut f = FnDynamics(|t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = y[0] * t.cos());
            // Output at the end and at off-grid points (dense output).
            let ts: Vec<f64> = vec![0.0, 0.37 * h, 1.0 + 0.5 * h, t_end];
            let opts = SolveOptions::new(tab).with_fixed_step(h);
            let sol = solve(&mut f, &vec![1.0], &ts, &opts, &RmsNorm).unwrap();
            hs.push(h);
            errs.push((sol.ys[3][0] - a3(t_end)).abs());
            derrs.push((sol.ys[2][0] - a3(ts[2])).abs().max((sol.ys[1][0] - a3(ts[1])).abs()));
        }
        let p = slope(&hs, &errs);
        assert!((p - tab.order as f64).abs() < 0.3, "{}: fitted order {p:.2}, claimed {} (errors {errs:?})", tab.name, tab.order);
        let dense_order = match tab.dense {
            DenseOutput::Polynomial { order, .. } => order,
            DenseOutput::Hermite => 3,
        };
        // Off-grid error: global error of order p plus local interpolation error O(h^(q+1)).
        let expect = (tab.order).min(dense_order + 1) as f64;
        let pd = slope(&hs, &derrs);
        assert!(pd > expect - 0.3, "{}: dense-output order {pd:.2}, expected >= {expect}", tab.name);
    }
}

#[test]
fn dense_output_is_exact_at_step_ends() {
    // Outputs exactly on grid points of a fixed-step solve equal a solve that ends there.
    for tab in METHODS {
        let h = 0.1;
        let mut f = FnDynamics(|t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = y[0] * t.cos());
        let opts = SolveOptions::new(tab).with_fixed_step(h);
        let a = solve(&mut f, &vec![1.0], &[0.0, 0.5, 1.0], &opts, &RmsNorm).unwrap();
        let b = solve(&mut f, &vec![1.0], &[0.0, 0.5], &opts, &RmsNorm).unwrap();
        assert!((a.ys[1][0] - b.ys[1][0]).abs() < 1e-14, "{}", tab.name);
    }
}

/// A dense solution evaluates anywhere in the span: exact at step ends, close to the true
/// solution between them, for every method, forward and in reverse time.
#[test]
fn dense_solution_evaluates_anywhere_in_the_span() {
    use nodal_solve::solve_dense;
    for tab in METHODS {
        for (t0, t1) in [(0.0, 3.0), (3.0, 0.0)] {
            let rtol = match tab.order {
                0..=2 => 1e-6,
                3 => 1e-8,
                _ => 1e-10,
            };
            let opts = if tab.error_order.is_some() {
                SolveOptions::new(tab).with_tol(rtol, rtol * 1e-2)
            } else {
                SolveOptions::new(tab).with_fixed_step(0.01)
            };
            let mut f = FnDynamics(|t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| dy[0] = y[0] * t.cos());
            let y0 = vec![a3(t0)];
            let (sol, dense) = solve_dense(&mut f, &y0, &[t0, t1], &opts, &RmsNorm).unwrap();
            assert_eq!(dense.steps.len(), sol.stats.accepted);
            let tol = if tab.order >= 4 {
                1e-7
            } else if tab.order >= 2 {
                1e-3
            } else {
                3e-2
            };
            for i in 0..=30 {
                let t = t0 + (t1 - t0) * i as f64 / 30.0;
                let y = dense.eval(t).unwrap()[0];
                assert!((y - a3(t)).abs() < tol, "{} t={t}: {y} vs {}", tab.name, a3(t));
            }
            for st in &dense.steps {
                assert_eq!(dense.eval(st.t + st.h).unwrap(), st.y1, "{}", tab.name);
            }
            assert!(dense.eval(t1 + (t1 - t0)).is_err());
        }
    }
}
