//! Host linear algebra in f64: ridge solves and spectral radii.
//!
//! The reference recipe's ridge systems `(HᵀH + λI) W = HᵀY` with λ = 1e-6 have condition numbers
//! of 1e11–1e13; solved in f32 the trajectory's first step loses almost 6 dB, so everything here
//! is f64 (Cholesky, with a pivoted LDLᵀ/LBLᵀ fallback when rounding makes the matrix indefinite).

use faer::linalg::solvers::Solve;
use faer::{Mat, MatRef, Side};

/// Solves `(G + λI) W = R` for a symmetric `G` (n×n, row-major) and `R` (n×k, row-major).
/// Returns W row-major (n×k).
pub fn ridge_solve(gram: &[f64], rhs: &[f64], n: usize, k: usize, lambda: f64) -> Vec<f64> {
    assert_eq!(gram.len(), n * n);
    assert_eq!(rhs.len(), n * k);
    let mut system = Mat::from_fn(n, n, |i, j| gram[i * n + j]);
    for i in 0..n {
        system[(i, i)] += lambda;
    }
    let rhs = MatRef::from_row_major_slice(rhs, n, k);
    let solution = match system.llt(Side::Lower) {
        Ok(cholesky) => cholesky.solve(rhs),
        // Not positive definite in floating point (λ too small for the data's conditioning):
        // a symmetric-indefinite factorisation with Bunch–Kaufman pivoting still solves it.
        Err(_) => system.lblt(Side::Lower).solve(rhs),
    };
    let mut out = vec![0.0; n * k];
    for i in 0..n {
        for j in 0..k {
            out[i * k + j] = solution[(i, j)];
        }
    }
    out
}

/// The largest eigenvalue modulus of a square row-major matrix, from its exact eigenvalues
/// (as `numpy.linalg.eigvals` and ReservoirPy compute it), not from power iteration, which
/// converges slowly when the leading eigenvalues are a complex pair.
pub fn spectral_radius(matrix: &[f64], n: usize) -> f64 {
    assert_eq!(matrix.len(), n * n);
    let m = MatRef::from_row_major_slice(matrix, n, n).to_owned();
    match m.eigenvalues() {
        Ok(values) => values.iter().map(|z| z.norm()).fold(0.0, f64::max),
        // The QR iteration did not converge (pathological input): fall back to the largest
        // singular value, an upper bound that equals the radius for normal matrices.
        Err(_) => m
            .singular_values()
            .map(|s| s.into_iter().fold(0.0, f64::max))
            .unwrap_or(f64::NAN),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
