//! Sharpness and frequency content of an image: how much fine detail a reconstruction keeps
//! (interpolants and coordinate networks both tend to lose the high frequencies first).
//!
//! Everything works on the grey image, the plain mean of R, G and B, in f64.

use anyhow::ensure;
use rustfft::FftPlanner;
use rustfft::num_complex::Complex;

/// Mean of |∇grey| with `gy, gx = numpy.gradient(grey)`: central differences inside, one-sided
/// first differences on the edges (numpy's default `edge_order=1`), unit spacing.
pub fn mean_gradient_magnitude(image: &[f32], side: usize) -> anyhow::Result<f64> {
    let g = grey(image, side)?;
    ensure!(side >= 2, "a gradient needs at least 2×2 pixels");
    let diff = |at: &dyn Fn(usize) -> f64, i: usize| -> f64 {
        if i == 0 {
            at(1) - at(0)
        } else if i == side - 1 {
            at(side - 1) - at(side - 2)
        } else {
            (at(i + 1) - at(i - 1)) / 2.0
        }
    };
    let mut sum = 0.0;
    for row in 0..side {
        for col in 0..side {
            let gy = diff(&|r| g[r * side + col], row);
            let gx = diff(&|c| g[row * side + c], col);
            sum += (gx * gx + gy * gy).sqrt();
        }
    }
    Ok(sum / (side * side) as f64)
}

/// Radially averaged power spectrum of the mean-subtracted grey image: `P = |FFT2(grey −
/// mean)|²`; frequency `(ky, kx)` in index units as after `fftshift` (−side/2 ..< side − side/2,
/// integer division), radius `r = √(ky² + kx²)`, bin `floor(r + 0.5)` (1-pixel bins, bin 0 = DC).
/// Entry b is the mean of P over bin b; the vector runs to the largest bin any frequency reaches
/// (12 bins for 16², round(side/√2) + 1 for even sides). A bin with no frequency holds 0. This
/// is `np.bincount(bins, P) / np.maximum(np.bincount(bins), 1)` in reference.py.
pub fn radial_power_spectrum(image: &[f32], side: usize) -> anyhow::Result<Vec<f64>> {
    let (power, radius) = power_and_radius(image, side)?;
    let bins: Vec<usize> = radius.iter().map(|&r| (r + 0.5).floor() as usize).collect();
    let len = bins.iter().copied().max().unwrap_or(0) + 1;
    let (mut sums, mut counts) = (vec![0.0; len], vec![0usize; len]);
    for (&b, &p) in bins.iter().zip(&power) {
        sums[b] += p;
        counts[b] += 1;
    }
    Ok(sums
        .iter()
        .zip(&counts)
        .map(|(&s, &c)| s / c.max(1) as f64)
        .collect())
}

/// Share of the total power (summed over frequencies, not over bin means) at radius strictly
/// above `nyquist_radius`, in the index units of [`radial_power_spectrum`]. For a mask with
/// stride s, say, `side / (2 s)` is the radius beyond which its samples alias. 0 for a flat image.
pub fn high_frequency_share(
    image: &[f32],
    side: usize,
    nyquist_radius: f64,
) -> anyhow::Result<f64> {
    let (power, radius) = power_and_radius(image, side)?;
    let total: f64 = power.iter().sum();
    if total <= 0.0 {
        return Ok(0.0);
    }
    let high: f64 = power
        .iter()
        .zip(&radius)
        .filter(|&(_, &r)| r > nyquist_radius)
        .map(|(p, _)| p)
        .sum();
    Ok(high / total)
}

/// Grey image (mean of the three channels) in f64.
fn grey(image: &[f32], side: usize) -> anyhow::Result<Vec<f64>> {
    ensure!(
        image.len() == side * side * 3 && side > 0,
        "expected a {side}×{side} RGB image ({} values), got {}",
        side * side * 3,
        image.len()
    );
    Ok(image
        .chunks_exact(3)
        .map(|p| (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0)
        .collect())
}

/// Power |F|² of the mean-subtracted grey image and the radius of each frequency, both in
/// unshifted FFT order (the order does not matter to the sums).
fn power_and_radius(image: &[f32], side: usize) -> anyhow::Result<(Vec<f64>, Vec<f64>)> {
    let g = grey(image, side)?;
    let mean = g.iter().sum::<f64>() / g.len() as f64;
    let mut data: Vec<Complex<f64>> = g.iter().map(|&v| Complex::new(v - mean, 0.0)).collect();
    let fft = FftPlanner::new().plan_fft_forward(side);
    fft.process(&mut data);
    let mut columns = vec![Complex::new(0.0, 0.0); side * side];
    for row in 0..side {
        for col in 0..side {
            columns[col * side + row] = data[row * side + col];
        }
    }
    fft.process(&mut columns);
    // numpy's fftshift moves index j to (j + side/2) % side; its frequency is that minus side/2.
    let freq = |j: usize| ((j + side / 2) % side) as f64 - (side / 2) as f64;
    let mut power = Vec::with_capacity(side * side);
    let mut radius = Vec::with_capacity(side * side);
    for kx in 0..side {
        for ky in 0..side {
            power.push(columns[kx * side + ky].norm_sqr());
            radius.push((freq(ky) * freq(ky) + freq(kx) * freq(kx)).sqrt());
        }
    }
    Ok((power, radius))
}

#[cfg(test)]
mod tests {
    use super::super::testimage::synthetic_rgb;
    use super::*;

    #[test]
    fn gradient_matches_numpy() {
        // gy, gx = np.gradient(synthetic_rgb(16).astype(float64).mean(axis=2));
        // np.sqrt(gx**2 + gy**2).mean()
        let g = mean_gradient_magnitude(&synthetic_rgb(16), 16).unwrap();
        assert!((g - 0.12922456966155138).abs() < 1e-12, "{g}");
        let g = mean_gradient_magnitude(&synthetic_rgb(15), 15).unwrap();
        assert!((g - 0.12933948444953305).abs() < 1e-12, "{g}");
        assert_eq!(mean_gradient_magnitude(&[0.5; 12], 2).unwrap(), 0.0);
    }

    #[test]
    fn radial_spectrum_matches_numpy() {
        // reference.py radial(synthetic_rgb(16)): bincount means of |fftshift(fft2(g - mean))|²
        let expected = [
            0.0,
            132.94481383806522,
            12.080039475159166,
            4.395410432710129,
            1.4784723337027095,
            1.873001560469255,
            3.5269498782881294,
            3.777329465494526,
            7.486045096550426,
            3.0195270703599504,
            1.4956551848031505,
            0.6727101972519541,
        ];
        let got = radial_power_spectrum(&synthetic_rgb(16), 16).unwrap();
        assert_eq!(got.len(), expected.len());
        for (b, (g, e)) in got.iter().zip(expected).enumerate() {
            assert!((g - e).abs() <= 1e-9 * e.max(1.0), "bin {b}: {g} vs {e}");
        }
        // Odd side 15: 11 bins, bin 1 = 102.17615986270863.
        let odd = radial_power_spectrum(&synthetic_rgb(15), 15).unwrap();
        assert_eq!(odd.len(), 11);
        assert!((odd[1] - 102.17615986270863).abs() < 1e-9);
    }

    #[test]
    fn high_frequency_share_matches_numpy() {
        // p[r > 4].sum() / p.sum() and p[r > 8].sum() / p.sum() in reference.py radial(...)
        let image = synthetic_rgb(16);
        let s4 = high_frequency_share(&image, 16, 4.0).unwrap();
        let s8 = high_frequency_share(&image, 16, 8.0).unwrap();
        assert!((s4 - 0.36740241842560245).abs() < 1e-12, "{s4}");
        assert!((s8 - 0.15361409079020372).abs() < 1e-12, "{s8}");
        let s5 = high_frequency_share(&synthetic_rgb(15), 15, 5.0).unwrap();
        assert!((s5 - 0.3284939865385708).abs() < 1e-12, "{s5}");
        assert_eq!(high_frequency_share(&[0.3; 48], 4, 1.0).unwrap(), 0.0);
        assert!(high_frequency_share(&image, 15, 1.0).is_err());
    }
}
