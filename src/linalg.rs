//! Host linear algebra in f64: ridge solves and spectral radii.
//!
//! The reference recipe's ridge systems `(HᵀH + λI) W = HᵀY` with λ = 1e-6 have condition numbers
//! of 1e11–1e13; solved in f32 the trajectory's first step loses almost 6 dB, so everything here
//! is f64 (Cholesky, with a pivoted LDLᵀ/LBLᵀ fallback when rounding makes the matrix indefinite).

use faer::linalg::matmul::triangular::{BlockStructure, matmul as triangular_matmul};
use faer::linalg::solvers::Solve;
use faer::linalg::triangular_solve::{
    solve_lower_triangular_in_place, solve_upper_triangular_in_place,
};
use faer::prelude::{Reborrow, ReborrowMut};
use faer::{Accum, Mat, MatMut, MatRef, Par, Side};

/// Solves `(G + λI) W = R` for a symmetric `G` (n×n, row-major) and `R` (n×k, row-major).
/// Returns W row-major (n×k).
pub fn ridge_solve(gram: &[f64], rhs: &[f64], n: usize, k: usize, lambda: f64) -> Vec<f64> {
    assert_eq!(gram.len(), n * n);
    assert_eq!(rhs.len(), n * k);
    let system = MatRef::from_row_major_slice(gram, n, n);
    let mut cholesky = GrowingCholesky::new();
    let rhs = MatRef::from_row_major_slice(rhs, n, k);
    let solution = match cholesky.extend(system, lambda) {
        Ok(()) => cholesky.solve(rhs),
        Err(NotPositiveDefinite) => indefinite_solve(system, lambda, rhs),
    };
    row_major(solution.as_ref())
}

/// The matrix's entries in row-major order.
pub fn row_major(matrix: MatRef<'_, f64>) -> Vec<f64> {
    let (rows, cols) = matrix.shape();
    let mut out = Vec::with_capacity(rows * cols);
    for i in 0..rows {
        out.extend((0..cols).map(|j| matrix[(i, j)]));
    }
    out
}

/// Solves `(G + λI) W = R` when `G + λI` is not positive definite in floating point (λ too small
/// for the data's conditioning): a symmetric-indefinite factorisation with Bunch–Kaufman pivoting.
pub fn indefinite_solve(gram: MatRef<'_, f64>, lambda: f64, rhs: MatRef<'_, f64>) -> Mat<f64> {
    let n = gram.nrows();
    let mut system = gram.to_owned();
    for i in 0..n {
        system[(i, i)] += lambda;
    }
    system.lblt(Side::Lower).solve(rhs)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotPositiveDefinite;

/// The lower Cholesky factor `L` of `G + λI` for a growing leading block of `G`: extending from n
/// to m columns computes only the new rows of `L`, so a cumulative ridge over k = 1, 2, 3, 5, 10
/// blocks pays for one factorisation of the largest system, not one per k.
///
/// Growing from n to m columns: a triangular solve for the new rows against the old factor, a
/// symmetric downdate of the new diagonal block, and its own factorisation. The arithmetic (and
/// its rounding behaviour) is ordinary blocked Cholesky; only the order of the work changes.
pub struct GrowingCholesky {
    factor: Mat<f64>,
}

impl Default for GrowingCholesky {
    fn default() -> Self {
        Self::new()
    }
}

impl GrowingCholesky {
    pub fn new() -> Self {
        GrowingCholesky {
            factor: Mat::zeros(0, 0),
        }
    }

    /// How many columns are factored.
    pub fn dim(&self) -> usize {
        self.factor.nrows()
    }

    /// Factors `system + λI` (only its lower triangle is read), reusing the factor of its first
    /// `self.dim()` columns, which must be the system this factor was built from. On failure the
    /// factor is left empty.
    pub fn extend(
        &mut self,
        system: MatRef<'_, f64>,
        lambda: f64,
    ) -> Result<(), NotPositiveDefinite> {
        let old = self.dim();
        let n = system.nrows();
        assert_eq!(system.ncols(), n);
        assert!(n >= old, "a factor only grows");
        let mut factor = Mat::<f64>::zeros(n, n);
        factor
            .as_mut()
            .submatrix_mut(0, 0, old, old)
            .copy_from_triangular_lower(&self.factor);
        // New rows, lower triangle, with λ on the diagonal; column by column (column-major).
        for j in 0..n {
            let first = old.max(j);
            factor
                .as_mut()
                .col_mut(j)
                .subrows_mut(first, n - first)
                .copy_from(system.col(j).subrows(first, n - first));
        }
        for i in old..n {
            factor[(i, i)] += lambda;
        }
        let par = Par::rayon(0);
        if old > 0 && n > old {
            // The old panels' effect on the new rows: L21 = A21·L11⁻ᵀ, then A22 −= L21·L21ᵀ.
            let (top, bottom) = factor.as_mut().split_at_row_mut(old);
            let l11 = top.rb().submatrix(0, 0, old, old);
            let (mut l21, mut a22) = bottom.split_at_col_mut(old);
            solve_lower_triangular_in_place(l11, l21.rb_mut().transpose_mut(), par);
            let a22 = a22.rb_mut().subcols_mut(0, n - old);
            symmetric_downdate(a22, l21.rb());
        }
        let result = factor_in_place(factor.as_mut(), old, par);
        self.factor = if result.is_ok() {
            factor
        } else {
            Mat::zeros(0, 0)
        };
        result
    }

    /// `(G + λI)⁻¹ R` for the factored system.
    pub fn solve(&self, rhs: MatRef<'_, f64>) -> Mat<f64> {
        assert_eq!(rhs.nrows(), self.dim());
        let mut solution = rhs.to_owned();
        let par = Par::rayon(0);
        solve_lower_triangular_in_place(self.factor.as_ref(), solution.as_mut(), par);
        solve_upper_triangular_in_place(self.factor.transpose(), solution.as_mut(), par);
        solution
    }
}

/// `a −= l·lᵀ` on the lower triangle of `a`.
fn symmetric_downdate(a: MatMut<'_, f64>, l: MatRef<'_, f64>) {
    triangular_matmul(
        a,
        BlockStructure::TriangularLower,
        Accum::Add,
        l,
        BlockStructure::Rectangular,
        l.transpose(),
        BlockStructure::Rectangular,
        -1.0,
        Par::rayon(0),
    );
}

/// Cholesky of the lower triangle of the trailing block `a[start.., start..]`, in place, by
/// faer's factorisation (left-looking and blocked; faster here than a right-looking loop).
fn factor_in_place(a: MatMut<'_, f64>, start: usize, par: Par) -> Result<(), NotPositiveDefinite> {
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::cholesky::llt::factor::{cholesky_in_place, cholesky_in_place_scratch};
    let n = a.nrows();
    if start == n {
        return Ok(());
    }
    let mut trailing = a.submatrix_mut(start, start, n - start, n - start);
    let scratch = cholesky_in_place_scratch::<f64>(n - start, par, Default::default());
    cholesky_in_place(
        trailing.rb_mut(),
        Default::default(),
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .map_err(|_| NotPositiveDefinite)?;
    // faer leaves its workspace in the strict upper triangle; the factor is lower triangular.
    for j in 1..trailing.ncols() {
        trailing.rb_mut().col_mut(j).subrows_mut(0, j).fill(0.0);
    }
    Ok(())
}

/// The largest eigenvalue modulus of a square row-major matrix, from its exact eigenvalues
/// (as `numpy.linalg.eigvals` and ReservoirPy compute it), not from power iteration, which
/// converges slowly when the leading eigenvalues are a complex pair.
///
/// Single-threaded: at reservoir sizes the QR iteration's parallel split costs more than it
/// gains (256×256: 25 ms serial, 32 ms on two threads), and independent reservoirs are then
/// solved side by side instead.
pub fn spectral_radius(matrix: &[f64], n: usize) -> f64 {
    assert_eq!(matrix.len(), n * n);
    let m = MatRef::from_row_major_slice(matrix, n, n);
    match real_eigenvalues(m) {
        Some(moduli) => moduli.into_iter().fold(0.0, f64::max),
        // The QR iteration did not converge (pathological input): fall back to the largest
        // singular value, an upper bound that equals the radius for normal matrices.
        None => m
            .singular_values()
            .map(|s| s.into_iter().fold(0.0, f64::max))
            .unwrap_or(f64::NAN),
    }
}

/// The moduli of a real square matrix's eigenvalues, serially; `None` if QR did not converge.
fn real_eigenvalues(m: MatRef<'_, f64>) -> Option<Vec<f64>> {
    use faer::diag::Diag;
    use faer::dyn_stack::{MemBuffer, MemStack};
    use faer::linalg::evd::{ComputeEigenvectors, evd_real, evd_scratch};
    let n = m.nrows();
    let mut real = Diag::<f64>::zeros(n);
    let mut imaginary = Diag::<f64>::zeros(n);
    let par = Par::Seq;
    let scratch = evd_scratch::<f64>(
        n,
        ComputeEigenvectors::No,
        ComputeEigenvectors::No,
        par,
        Default::default(),
    );
    evd_real(
        m,
        real.as_mut(),
        imaginary.as_mut(),
        None,
        None,
        par,
        MemStack::new(&mut MemBuffer::new(scratch)),
        Default::default(),
    )
    .ok()?;
    Some(
        real.column_vector()
            .iter()
            .zip(imaginary.column_vector().iter())
            .map(|(re, im)| re.hypot(*im))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A symmetric positive-definite test matrix `XᵀX` (row-major) from a fixed pseudo-random X.
    fn gram_of_random(rows: usize, n: usize) -> Vec<f64> {
        let mut state = 12345u64;
        let x = Mat::<f64>::from_fn(rows, n, |_, _| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 11) as f64 / (1u64 << 53) as f64 - 0.5
        });
        row_major((x.transpose() * &x).as_ref())
    }

    #[test]
    fn growing_cholesky_matches_one_factorisation_and_solves() {
        // Sizes that cross panel boundaries unevenly, grown in uneven steps.
        let n = 421;
        let gram = gram_of_random(n + 50, n);
        let system = MatRef::from_row_major_slice(&gram, n, n);
        let lambda = 1e-3;
        let mut grown = GrowingCholesky::new();
        for size in [5, 128, 129, 266, n] {
            grown
                .extend(system.submatrix(0, 0, size, size), lambda)
                .unwrap();
            assert_eq!(grown.dim(), size);
        }
        let mut whole = GrowingCholesky::new();
        whole.extend(system, lambda).unwrap();
        let difference = (&grown.factor - &whole.factor).norm_max();
        assert!(difference < 1e-10, "{difference}");
        // L·Lᵀ reproduces the system.
        let mut shifted = system.to_owned();
        for i in 0..n {
            shifted[(i, i)] += lambda;
        }
        let product = &whole.factor * whole.factor.transpose();
        assert!((&product - &shifted).norm_max() < 1e-9 * shifted.norm_max());
        // And the solve inverts it.
        let rhs = Mat::<f64>::from_fn(n, 3, |i, j| (i as f64 * 0.37 + j as f64).sin());
        let solution = whole.solve(rhs.as_ref());
        let residual = (&shifted * &solution - &rhs).norm_max();
        assert!(residual < 1e-8, "{residual}");
    }

    #[test]
    fn growing_cholesky_reports_an_indefinite_system() {
        let g = [1.0, 2.0, 2.0, 1.0];
        let mut cholesky = GrowingCholesky::new();
        let result = cholesky.extend(MatRef::from_row_major_slice(&g, 2, 2), 0.0);
        assert_eq!(result, Err(NotPositiveDefinite));
        assert_eq!(cholesky.dim(), 0);
    }

    #[test]
    fn ridge_solves_a_small_system() {
        // G = [[4, 1], [1, 3]], R = [[1], [2]], λ = 0 → W = [1/11, 7/11]
        let w = ridge_solve(&[4.0, 1.0, 1.0, 3.0], &[1.0, 2.0], 2, 1, 0.0);
        assert!((w[0] - 1.0 / 11.0).abs() < 1e-14);
        assert!((w[1] - 7.0 / 11.0).abs() < 1e-14);
    }

    #[test]
    fn ridge_falls_back_when_not_positive_definite() {
        // Indefinite: eigenvalues 3 and −1. Cholesky fails; the pivoted solve still answers.
        let g = [1.0, 2.0, 2.0, 1.0];
        let w = ridge_solve(&g, &[3.0, 3.0], 2, 1, 0.0);
        assert!(
            (w[0] - 1.0).abs() < 1e-12 && (w[1] - 1.0).abs() < 1e-12,
            "{w:?}"
        );
    }

    #[test]
    fn spectral_radius_of_a_rotation_and_a_triangle() {
        // Rotation by 90° scaled by 2: eigenvalues ±2i, power iteration would oscillate.
        assert!((spectral_radius(&[0.0, -2.0, 2.0, 0.0], 2) - 2.0).abs() < 1e-12);
        // Upper triangular: eigenvalues on the diagonal.
        let m = [1.0, 5.0, 7.0, 0.0, -3.0, 2.0, 0.0, 0.0, 0.5];
        assert!((spectral_radius(&m, 3) - 3.0).abs() < 1e-12);
    }
}
