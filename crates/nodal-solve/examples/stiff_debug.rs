use nodal_solve::stiff_problems::STIFF_PROBLEMS;
use nodal_solve::tableau::DOPRI5;
use nodal_solve::{FnDynamics, ImplicitMethod, ImplicitSettings, RmsNorm, SolveOptions, solve};
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rtol: f64 = args.get(1).map(|s| s.parse().unwrap()).unwrap_or(1e-6);
    for p in STIFF_PROBLEMS {
        let atol = if p.name == "robertson" { 1e-14 } else { 1e-10 };
        for method in ImplicitMethod::ALL {
            let opts =
                SolveOptions::new(&DOPRI5).with_implicit(method).with_tol(rtol, atol).with_max_steps(100_000).with_implicit_settings(
                    ImplicitSettings {
                        reuse_jacobian: std::env::var("REUSE").is_ok(),
                        newton_tol: std::env::var("NTOL").map(|s| s.parse().unwrap()).unwrap_or(0.03),
                        ..Default::default()
                    },
                );
            let mut f = FnDynamics(|t: f64, y: &Vec<f64>, dy: &mut Vec<f64>| (p.f)(t, y, dy));
            let t0 = std::time::Instant::now();
            match solve(&mut f, &p.y0.to_vec(), &[0.0, p.t_end], &opts, &RmsNorm) {
                Ok(sol) => println!(
                    "{} {}: err {:.2e} {:?} {:?} {:.1}ms",
                    p.name,
                    method.name(),
                    p.error(&sol.ys[1], atol),
                    sol.ys[1],
                    sol.stats,
                    t0.elapsed().as_secs_f64() * 1e3
                ),
                Err(e) => println!("{} {}: FAIL {} {:?}", p.name, method.name(), e.error, e.partial.stats),
            }
        }
    }
}
