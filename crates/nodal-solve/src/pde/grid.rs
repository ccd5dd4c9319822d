//! Grids and stencils of the method of lines: a derivative is a fixed convolution whose
//! padding is the boundary condition.
//!
//! | boundary | grid points on `[0, L]` | padding (ghost values) |
//! |---|---|---|
//! | [`Boundary::Periodic`] | `x_i = i dx`, `dx = L / n` | circular |
//! | [`Boundary::Dirichlet`] (`u = 0`) | `x_i = (i + 1) dx`, `dx = L / (n + 1)` | zeros |
//! | [`Boundary::Neumann`] (`u_x = 0`) | cell centres `x_i = (i + 1/2) dx`, `dx = L / n` | mirror: `u_{-1-k} = u_k` |
//!
//! With these paddings the second-difference stencil `[1, -2, 1] / dx^2` is a symmetric matrix,
//! second-order accurate, and the stencils' adjoints ([`Axis::conv_transpose`]) are what
//! vector-Jacobian products need.

/// Boundary condition at both ends of an axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Boundary {
    /// `u(0) = u(L)` (circular padding).
    Periodic,
    /// `u = 0` at both ends (zero padding).
    Dirichlet,
    /// `u_x = 0` at both ends (mirror padding about the cell faces).
    Neumann,
}

impl Boundary {
    /// Parse `periodic`, `dirichlet` or `neumann`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "periodic" => Some(Self::Periodic),
            "dirichlet" => Some(Self::Dirichlet),
            "neumann" => Some(Self::Neumann),
            _ => None,
        }
    }
}

/// One axis of a grid: `n` points on `[0, length]` under a boundary condition.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    /// Number of unknowns.
    pub n: usize,
    /// Domain length.
    pub length: f64,
    /// Boundary condition.
    pub boundary: Boundary,
}

impl Axis {
    /// `n` unknowns on `[0, length]`.
    pub fn new(n: usize, length: f64, boundary: Boundary) -> Self {
        Self { n, length, boundary }
    }

    /// Grid spacing.
    pub fn dx(&self) -> f64 {
        match self.boundary {
            Boundary::Dirichlet => self.length / (self.n + 1) as f64,
            Boundary::Periodic | Boundary::Neumann => self.length / self.n as f64,
        }
    }

    /// Coordinate of point `i`.
    pub fn x(&self, i: usize) -> f64 {
        let dx = self.dx();
        match self.boundary {
            Boundary::Periodic => i as f64 * dx,
            Boundary::Dirichlet => (i + 1) as f64 * dx,
            Boundary::Neumann => (i as f64 + 0.5) * dx,
        }
    }

    /// Where index `i` (possibly outside `0..n`) reads from: `Some(j)` or `None` for a zero.
    #[inline]
    fn source(&self, i: isize) -> Option<usize> {
        let n = self.n as isize;
        if (0..n).contains(&i) {
            return Some(i as usize);
        }
        match self.boundary {
            Boundary::Periodic => Some(i.rem_euclid(n) as usize),
            Boundary::Dirichlet => None,
            Boundary::Neumann => {
                let j = if i < 0 { -1 - i } else { 2 * n - 1 - i };
                (0..n).contains(&j).then_some(j as usize)
            }
        }
    }

    /// `out_i = sum_k kernel[k] u_{i + k - r}` (odd width `2 r + 1`) over the padded `u`, with
    /// stride `stride` between consecutive points (for the axes of a 2-D array), for each of
    /// the `lines` lines starting at `offset(line)`.
    pub fn conv(&self, kernel: &[f64], u: &[f64], out: &mut [f64], stride: usize, starts: &[usize], accumulate: bool) {
        let r = (kernel.len() / 2) as isize;
        for &s0 in starts {
            for i in 0..self.n {
                let mut acc = 0.0;
                for (k, w) in kernel.iter().enumerate() {
                    if let Some(j) = self.source(i as isize + k as isize - r) {
                        acc += w * u[s0 + j * stride];
                    }
                }
                let o = &mut out[s0 + i * stride];
                *o = if accumulate { *o + acc } else { acc };
            }
        }
    }

    /// The adjoint of [`Axis::conv`]: `out += C^T a` (always accumulates).
    pub fn conv_transpose(&self, kernel: &[f64], a: &[f64], out: &mut [f64], stride: usize, starts: &[usize]) {
        let r = (kernel.len() / 2) as isize;
        for &s0 in starts {
            for i in 0..self.n {
                let ai = a[s0 + i * stride];
                if ai == 0.0 {
                    continue;
                }
                for (k, w) in kernel.iter().enumerate() {
                    if let Some(j) = self.source(i as isize + k as isize - r) {
                        out[s0 + j * stride] += w * ai;
                    }
                }
            }
        }
    }

    /// The second-difference kernel `[1, -2, 1] / dx^2`.
    pub fn second_difference(&self) -> [f64; 3] {
        let c = 1.0 / (self.dx() * self.dx());
        [c, -2.0 * c, c]
    }

    /// The central first-difference kernel `[-1, 0, 1] / (2 dx)`.
    pub fn central_difference(&self) -> [f64; 3] {
        let c = 0.5 / self.dx();
        [-c, 0.0, c]
    }
}

/// A 1-D or 2-D grid (row-major `[ny, nx]` in 2-D); the state of a field is one value per point.
#[derive(Debug, Clone, PartialEq)]
pub enum Grid {
    /// One axis.
    OneD(Axis),
    /// Two axes: `x` (fast, contiguous) and `y`.
    TwoD(Axis, Axis),
}

impl Grid {
    /// Points of the grid.
    pub fn len(&self) -> usize {
        match self {
            Self::OneD(a) => a.n,
            Self::TwoD(x, y) => x.n * y.n,
        }
    }

    /// Whether the grid has no points.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `out = Laplacian(u)` (`+=` with `accumulate`), for one field of [`Grid::len`] values.
    pub fn laplacian(&self, u: &[f64], out: &mut [f64], accumulate: bool) {
        match self {
            Self::OneD(a) => a.conv(&a.second_difference(), u, out, 1, &[0], accumulate),
            Self::TwoD(x, y) => {
                let rows: Vec<usize> = (0..y.n).map(|r| r * x.n).collect();
                let cols: Vec<usize> = (0..x.n).collect();
                x.conv(&x.second_difference(), u, out, 1, &rows, accumulate);
                y.conv(&y.second_difference(), u, out, x.n, &cols, true);
            }
        }
    }
}
