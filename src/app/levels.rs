//! A multi-resolution method's downloaded levels made ready to show, on the compute thread:
//! pictures at most [`THUMBNAIL_MAX_SIDE`] a side, each image's PSNR against its level's truth,
//! and one Haar level of the truth and of the teacher-forced prediction. Done once per arrival,
//! so the UI thread only uploads textures.

use std::sync::Arc;

use egui::ColorImage;

use super::protocol::{HaarBandPictures, LevelFrame, LevelPicture, THUMBNAIL_MAX_SIDE};
use crate::imaging::{band_image, color_image_from_rgb, downsample, haar_bands, host_mse, rms};
use crate::methods::{LevelImages, psnr_from_mse};

/// Detail bands are amplified so that a change of a quarter of the range saturates.
pub const BAND_GAIN: f32 = 4.0;

/// Every level whose truth has the level's size, coarse to fine; images of the wrong size are
/// left out rather than trusted.
pub fn level_frames(levels: &[LevelImages]) -> Vec<LevelFrame> {
    levels.iter().filter_map(level_frame).collect()
}

fn level_frame(level: &LevelImages) -> Option<LevelFrame> {
    let side = level.side;
    let fits = |pixels: &[f32]| side > 0 && pixels.len() == side * side * 3;
    if !fits(&level.truth) {
        return None;
    }
    let picture = |caption: &str, pixels: &[f32]| {
        fits(pixels).then(|| LevelPicture {
            caption: caption.to_owned(),
            image: small(color_image_from_rgb(pixels, side)),
            psnr_db: Some(psnr_from_mse(host_mse(pixels, &level.truth))),
        })
    };
    // Samples from noise canvases follow the rollouts as rows of their own, unscored.
    let samples = level.samples.iter().filter_map(|(caption, pixels)| {
        picture(caption, pixels).map(|picture| LevelPicture {
            psnr_db: None,
            ..picture
        })
    });
    let rollouts = level
        .rollouts
        .iter()
        .filter_map(|(caption, pixels)| picture(caption, pixels))
        .chain(samples)
        .collect();
    // The bands are of the images as shown, clipped into [0, 1] like the PSNR.
    let truth_bands = haar_bands(&clipped(&level.truth), side);
    let teacher_forced_bands = fits(&level.teacher_forced)
        .then(|| haar_bands(&clipped(&level.teacher_forced), side))
        .flatten()
        .map(|bands| band_pictures(&bands, side / 2, truth_bands.as_ref()));
    Some(LevelFrame {
        side,
        truth: small(color_image_from_rgb(&level.truth, side)),
        rollouts,
        teacher_forced: picture("teacher-forced", &level.teacher_forced),
        nearest: picture("nearest", &level.nearest),
        bicubic: picture("bicubic", &level.bicubic),
        truth_bands: truth_bands
            .as_ref()
            .map(|bands| band_pictures(bands, side / 2, None)),
        teacher_forced_bands,
    })
}

fn clipped(pixels: &[f32]) -> Vec<f32> {
    pixels.iter().map(|v| v.clamp(0.0, 1.0)).collect()
}

/// The image, box-filtered down to at most [`THUMBNAIL_MAX_SIDE`] a side.
fn small(image: ColorImage) -> Arc<ColorImage> {
    let side = image.size[0];
    if side > THUMBNAIL_MAX_SIDE {
        Arc::new(downsample(&image, side.div_ceil(THUMBNAIL_MAX_SIDE)))
    } else {
        Arc::new(image)
    }
}

/// Pictures of `bands` (LL, LH, HL, HH at `half` a side), and their error against
/// `reference`'s bands when given.
fn band_pictures(
    bands: &[Vec<f32>; 4],
    half: usize,
    reference: Option<&[Vec<f32>; 4]>,
) -> HaarBandPictures {
    // LL is twice the 2×2 mean: halved, it is the image at half the side.
    let mean: Vec<f32> = bands[0].iter().map(|v| v / 2.0).collect();
    let pictures = [
        small(color_image_from_rgb(&mean, half)),
        small(band_image(&bands[1], half, BAND_GAIN)),
        small(band_image(&bands[2], half, BAND_GAIN)),
        small(band_image(&bands[3], half, BAND_GAIN)),
    ];
    let error_rms = reference.map(|reference| {
        std::array::from_fn(|band| {
            let difference: Vec<f32> = bands[band]
                .iter()
                .zip(&reference[band])
                .map(|(v, r)| v - r)
                .collect();
            rms(&difference)
        })
    });
    HaarBandPictures {
        bands: pictures,
        rms: std::array::from_fn(|band| rms(&bands[band])),
        error_rms,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(side: usize, value: f32, predicted: bool) -> LevelImages {
        let image = |v: f32| vec![v; side * side * 3];
        let predicted_image = |v: f32| if predicted { image(v) } else { Vec::new() };
        LevelImages {
            side,
            truth: image(value),
            rollouts: vec![
                ("from the true 4×4".into(), image(value)),
                ("from noise".into(), image(value + 0.1)),
            ],
            samples: vec![("sample 1".into(), image(0.9))],
            teacher_forced: predicted_image(value + 0.01),
            nearest: predicted_image(value + 0.1),
            bicubic: predicted_image(value + 0.05),
        }
    }

    #[test]
    fn levels_get_their_psnr_and_bands_and_the_base_has_no_prediction() {
        let frames = level_frames(&[level(4, 0.5, false), level(8, 0.5, true)]);
        assert_eq!(frames.len(), 2);
        let (base, fine) = (&frames[0], &frames[1]);
        assert!(base.teacher_forced.is_none() && base.teacher_forced_bands.is_none());
        assert!(base.nearest.is_none() && base.bicubic.is_none());
        assert_eq!(base.truth_bands.as_ref().unwrap().bands[0].size, [2, 2]);
        // The sample follows the rollouts, without a score.
        assert_eq!(base.rollouts.len(), 3);
        assert_eq!(base.rollouts[2].caption, "sample 1");
        assert_eq!(base.rollouts[2].psnr_db, None);
        assert_eq!(
            base.rollouts[0].psnr_db,
            Some(100.0),
            "the true base is the truth"
        );
        // 0.01 off everywhere: 40 dB; 0.1: 20 dB.
        let tf = fine.teacher_forced.as_ref().unwrap();
        assert!(
            (tf.psnr_db.unwrap() - 40.0).abs() < 0.01,
            "{:?}",
            tf.psnr_db
        );
        assert!((fine.nearest.as_ref().unwrap().psnr_db.unwrap() - 20.0).abs() < 0.01);
        let bands = fine.teacher_forced_bands.as_ref().unwrap();
        assert_eq!(bands.bands[3].size, [4, 4]);
        // A constant offset is all in LL: 0.01·2 there, nothing in the details.
        let error = bands.error_rms.unwrap();
        assert!((error[0] - 0.02).abs() < 1e-6, "{error:?}");
        assert!(error[1..].iter().all(|&e| e < 1e-6), "{error:?}");
    }

    #[test]
    fn odd_input_is_left_out_without_a_panic() {
        let mut wrong = level(8, 0.5, true);
        wrong.teacher_forced.truncate(5);
        wrong.rollouts[1].1.clear();
        let frames = level_frames(&[
            LevelImages::default(),
            level(1, 0.5, false),
            wrong,
            LevelImages {
                side: 3,
                truth: vec![0.0; 2],
                ..LevelImages::default()
            },
        ]);
        assert_eq!(
            frames.len(),
            2,
            "the empty level and the short truth are left out"
        );
        assert!(frames[0].truth_bands.is_none(), "a 1×1 level has no bands");
        assert!(frames[1].teacher_forced.is_none() && frames[1].teacher_forced_bands.is_none());
        assert_eq!(
            frames[1].rollouts.len(),
            2,
            "one rollout left out, the sample kept"
        );
    }

    #[test]
    fn large_levels_are_sent_at_thumbnail_size() {
        let frames = level_frames(&[level(512, 0.5, true)]);
        assert_eq!(frames[0].truth.size, [256, 256]);
        assert_eq!(
            frames[0].truth_bands.as_ref().unwrap().bands[1].size,
            [256, 256]
        );
    }
}
