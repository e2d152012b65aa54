//! The image being fitted: loading, resizing to the working size, and its coordinates.

use std::path::Path;

use anyhow::{Context, bail};
use image::{DynamicImage, ImageFormat, ImageReader, RgbImage, imageops::FilterType};

/// Largest side accepted from a file; a larger image is refused before it is decoded.
pub const MAX_INPUT_SIDE: u32 = 16_384;
/// Large photos are first brought down to this side with a fast filter, so that nothing else
/// (the Lanczos resize, the thumbnail in the window) ever touches hundreds of megapixels.
const PRE_DOWNSCALE_SIDE: u32 = 2_048;

/// The bytes of the built-in sample ("Chelsea the cat", CC0; see assets/README.md).
pub const SAMPLE_PNG: &[u8] = include_bytes!("../assets/chelsea.png");
pub const SAMPLE_NAME: &str = "chelsea (built-in sample)";

/// How a non-square image becomes square.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Default,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Fit {
    /// Resize the whole image to a square, changing its aspect ratio (as the seed notebooks do).
    #[default]
    Stretch,
    /// Cut the largest centred square, then resize it.
    CenterCrop,
}

/// A square RGB image at the working size, as f32 in [0, 1].
#[derive(Clone)]
pub struct Target {
    pub name: String,
    pub size: usize,
    /// `size·size` rows of RGB, row-major pixels.
    pub pixels: Vec<f32>,
    /// The pixels a run may see when it reconstructs from a fraction of them; `None`: all.
    pub observation: Option<std::sync::Arc<crate::sparse::Observation>>,
}

impl Target {
    /// Makes the target from a decoded image. An image that is already `size`×`size` is used
    /// as is; otherwise it is resized with a Lanczos-3 filter.
    pub fn from_image(
        name: &str,
        image: &DynamicImage,
        size: usize,
        fit: Fit,
    ) -> anyhow::Result<Self> {
        if !(4..=4096).contains(&size) {
            bail!("working size {size} is outside 4–4096");
        }
        let rgb = image.to_rgb8();
        let (width, height) = rgb.dimensions();
        if width == 0 || height == 0 {
            bail!("the image is empty ({width}×{height})");
        }
        let rgb = match fit {
            Fit::Stretch => rgb,
            Fit::CenterCrop => {
                let side = width.min(height);
                image::imageops::crop_imm(&rgb, (width - side) / 2, (height - side) / 2, side, side)
                    .to_image()
            }
        };
        let side = size as u32;
        let resized: RgbImage = if rgb.dimensions() == (side, side) {
            rgb
        } else {
            image::imageops::resize(&rgb, side, side, FilterType::Lanczos3)
        };
        let pixels = resized.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
        Ok(Target {
            name: name.to_owned(),
            size,
            pixels,
            observation: None,
        })
    }

    /// The built-in sample at the given size.
    pub fn sample(size: usize, fit: Fit) -> anyhow::Result<Self> {
        let decoded =
            decode_bytes(SAMPLE_PNG, SAMPLE_NAME).context("decoding the built-in sample")?;
        Self::from_image(SAMPLE_NAME, &decoded.image, size, fit)
    }

    pub fn pixel_count(&self) -> usize {
        self.size * self.size
    }

    /// Coordinates as the seed notebooks make them: x = column/size, y = row/size, row-major.
    pub fn coords(&self) -> Vec<f32> {
        coordinate_grid(self.size)
    }

    /// The same image seen only through `spec`'s mask (its baselines interpolated now).
    pub fn observed_through(
        mut self,
        spec: crate::sparse::ObservationSpec,
    ) -> anyhow::Result<Self> {
        let observation = crate::sparse::Observation::new(spec, &self.pixels, self.size)?;
        self.observation = Some(std::sync::Arc::new(observation));
        Ok(self)
    }

    /// The pixels methods fit on, ascending: the training share of the observed ones, or
    /// `None` for every pixel.
    pub fn training_pixels(&self) -> Option<&[u32]> {
        self.observation.as_ref().map(|o| o.split.train.as_slice())
    }

    /// The coordinates and RGB values of the pixels methods fit on (every pixel, or the
    /// training share of the observed ones).
    pub fn training_set(&self) -> (Vec<f32>, Vec<f32>) {
        let coords = self.coords();
        match self.training_pixels() {
            None => (coords, self.pixels.clone()),
            Some(pixels) => {
                let mut set_coords = Vec::with_capacity(2 * pixels.len());
                let mut values = Vec::with_capacity(3 * pixels.len());
                for &pixel in pixels {
                    let at = pixel as usize;
                    set_coords.extend_from_slice(&coords[2 * at..2 * at + 2]);
                    values.extend_from_slice(&self.pixels[3 * at..3 * at + 3]);
                }
                (set_coords, values)
            }
        }
    }
}

/// Model coordinates of the centres of a `fine`-sided grid's pixels, for a model trained on a
/// `coarse`-sided one. Training coordinates put pixel i at its left edge, i/coarse (the seed
/// notebooks'), so a model coordinate u stands for the physical point u + 1/(2·coarse); the
/// fine pixel j's centre (j + ½)/fine is therefore u = (j + ½)/fine − 1/(2·coarse). With
/// fine = coarse this is the training grid itself.
pub fn rendering_grid(coarse: usize, fine: usize) -> Vec<f32> {
    let axis: Vec<f32> = (0..fine)
        .map(|j| ((j as f64 + 0.5) / fine as f64 - 0.5 / coarse as f64) as f32)
        .collect();
    let mut coords = Vec::with_capacity(fine * fine * 2);
    for &y in &axis {
        for &x in &axis {
            coords.push(x);
            coords.push(y);
        }
    }
    coords
}

/// `(column/size, row/size)` for every pixel, row-major.
pub fn coordinate_grid(size: usize) -> Vec<f32> {
    let mut coords = Vec::with_capacity(size * size * 2);
    for row in 0..size {
        for col in 0..size {
            coords.push((col as f64 / size as f64) as f32);
            coords.push((row as f64 / size as f64) as f32);
        }
    }
    coords
}

fn limits() -> image::Limits {
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_INPUT_SIDE);
    limits.max_image_height = Some(MAX_INPUT_SIDE);
    limits.max_alloc = Some(3 << 30);
    limits
}

/// Brings a very large image down before anything else touches it.
fn tame(image: DynamicImage) -> DynamicImage {
    if image.width().max(image.height()) > PRE_DOWNSCALE_SIDE {
        image.resize(PRE_DOWNSCALE_SIDE, PRE_DOWNSCALE_SIDE, FilterType::Triangle)
    } else {
        image
    }
}

fn explain(error: image::ImageError) -> anyhow::Error {
    match error {
        image::ImageError::Limits(_) => anyhow::anyhow!(
            "the image is too large (inrlab accepts up to {MAX_INPUT_SIDE} pixels a side)"
        ),
        image::ImageError::Unsupported(e) => anyhow::anyhow!("not an image inrlab can read: {e}"),
        image::ImageError::Decoding(e) => anyhow::anyhow!("the image is damaged or truncated: {e}"),
        image::ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            anyhow::anyhow!("the image is truncated (the file ends early)")
        }
        other => anyhow::anyhow!("{other}"),
    }
}

/// A decoded image, with a warning when the file decoded only in part (the decoders fill what
/// is missing, so the picture looks whole but is not).
pub struct Decoded {
    pub image: DynamicImage,
    /// One line naming the file, for stderr or the window's notice.
    pub warning: Option<String>,
}

/// Decodes an image file with size limits; the error says what is wrong in one line and names
/// the file (the window shows it as it is).
pub fn load_image(path: &Path) -> anyhow::Result<Decoded> {
    let mut reader = ImageReader::open(path)
        .with_context(|| format!("cannot open {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("cannot read {}", path.display()))?;
    let Some(format) = reader.format() else {
        bail!("{} is not an image inrlab can read", path.display());
    };
    reader.limits(limits());
    let image = reader
        .decode()
        .map_err(explain)
        .with_context(|| format!("cannot load {}", path.display()))?;
    // Only JPEG needs its bytes looked at again, and a JPEG within the limits is small.
    let truncated = format == ImageFormat::Jpeg
        && is_truncated(
            format,
            &std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?,
        );
    Ok(Decoded {
        image: tame(image),
        warning: truncated.then(|| truncation_warning(&path.display().to_string())),
    })
}

/// Decodes an image held in memory (drag and drop of bytes, the built-in sample); `name` is
/// what a warning calls it.
pub fn decode_bytes(bytes: &[u8], name: &str) -> anyhow::Result<Decoded> {
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .context("cannot read the image")?;
    let Some(format) = reader.format() else {
        bail!("not an image inrlab can read");
    };
    reader.limits(limits());
    let image = tame(reader.decode().map_err(explain)?);
    Ok(Decoded {
        image,
        warning: is_truncated(format, bytes).then(|| truncation_warning(name)),
    })
}

fn truncation_warning(name: &str) -> String {
    format!("{name} is truncated: the decoder filled in what is missing after the cut")
}

/// Whether a file that decoded is cut short. Only JPEG decodes a truncated file without an
/// error (zune-jpeg fills the missing blocks); the other decoders image 0.25 uses refuse one.
fn is_truncated(format: ImageFormat, bytes: &[u8]) -> bool {
    format == ImageFormat::Jpeg && jpeg_lacks_end(bytes)
}

/// Whether a JPEG stream ends before its end-of-image marker. Walks the marker segments by
/// their lengths (so a thumbnail embedded in EXIF data is skipped whole) and the entropy-coded
/// data after each start of scan, where 0xFF is always followed by 0x00 or a restart marker.
fn jpeg_lacks_end(bytes: &[u8]) -> bool {
    const START_OF_SCAN: u8 = 0xDA;
    const END_OF_IMAGE: u8 = 0xD9;
    let restart = 0xD0..=0xD7;
    let mut at = 2;
    loop {
        while at < bytes.len() && bytes[at] != 0xFF {
            at += 1;
        }
        while at < bytes.len() && bytes[at] == 0xFF {
            at += 1;
        }
        let Some(&marker) = bytes.get(at) else {
            return true;
        };
        at += 1;
        if marker == END_OF_IMAGE {
            return false;
        }
        if restart.contains(&marker) || marker == 0x01 {
            continue;
        }
        let Some(length) = bytes.get(at..at + 2) else {
            return true;
        };
        at += u16::from_be_bytes([length[0], length[1]]) as usize;
        if marker == START_OF_SCAN {
            loop {
                match bytes.get(at..at + 2) {
                    None => return true,
                    Some(&[0xFF, next]) if next != 0x00 && !restart.contains(&next) => break,
                    Some(_) => at += 1,
                }
            }
        }
    }
}

/// Converts RGB f32 in [0, 1] (row-major pixels) to an 8-bit image. NaN becomes 0.
pub fn rgb8_from_f32(pixels: &[f32], width: usize, height: usize) -> RgbImage {
    let bytes = pixels
        .iter()
        .map(|&v| {
            if v.is_nan() {
                0
            } else {
                (v.clamp(0.0, 1.0) * 255.0).round() as u8
            }
        })
        .collect();
    RgbImage::from_raw(width as u32, height as u32, bytes).expect("pixel count matches size")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coordinates_follow_the_seed_layout() {
        let c = coordinate_grid(4);
        // pixel (row 1, col 2) → index 6 → (x = 2/4, y = 1/4)
        assert_eq!((c[12], c[13]), (0.5, 0.25));
        assert_eq!(c.len(), 32);
    }

    #[test]
    fn sample_loads_at_any_size_and_fits() {
        for fit in [Fit::Stretch, Fit::CenterCrop] {
            let t = Target::sample(32, fit).unwrap();
            assert_eq!(t.pixels.len(), 32 * 32 * 3);
            let mean: f32 = t.pixels.iter().sum::<f32>() / t.pixels.len() as f32;
            assert!(mean > 0.1 && mean < 0.9, "sample looks blank: mean {mean}");
        }
    }

    #[test]
    fn garbage_and_truncated_files_are_clear_errors() {
        assert!(decode_bytes(b"hello, not an image", "x").is_err());
        let truncated = &SAMPLE_PNG[..SAMPLE_PNG.len() / 3];
        let message = format!("{:#}", decode_bytes(truncated, "x").err().unwrap());
        assert!(
            message.contains("damaged") || message.contains("truncated"),
            "{message}"
        );
    }

    /// The sample encoded in `format` by image's own encoder.
    fn sample_as(format: ImageFormat) -> Vec<u8> {
        let image = decode_bytes(SAMPLE_PNG, SAMPLE_NAME).unwrap().image;
        // A small copy keeps the encoders quick; formats without RGB8 take RGBA8 or RGB32F.
        let image = image.resize_exact(96, 64, FilterType::Triangle);
        let image = match format {
            ImageFormat::Ico | ImageFormat::Qoi => DynamicImage::ImageRgba8(image.to_rgba8()),
            ImageFormat::Hdr => DynamicImage::ImageRgb32F(image.to_rgb32f()),
            _ => DynamicImage::ImageRgb8(image.to_rgb8()),
        };
        let mut bytes = std::io::Cursor::new(Vec::new());
        image.write_to(&mut bytes, format).unwrap();
        bytes.into_inner()
    }

    #[test]
    fn a_truncated_jpeg_decodes_with_a_warning_naming_it() {
        let jpeg = sample_as(ImageFormat::Jpeg);
        let whole = decode_bytes(&jpeg, "cat.jpg").unwrap();
        assert!(whole.warning.is_none(), "{:?}", whole.warning);
        let cut = decode_bytes(&jpeg[..jpeg.len() * 3 / 5], "cat.jpg").unwrap();
        assert_eq!((cut.image.width(), cut.image.height()), (96, 64));
        let warning = cut.warning.expect("a truncated JPEG is reported");
        assert!(
            warning.contains("cat.jpg") && warning.contains("truncated"),
            "{warning}"
        );
        // Bytes after the end-of-image marker are not truncation.
        let mut padded = jpeg.clone();
        padded.extend_from_slice(&[0, 0, 0]);
        assert!(decode_bytes(&padded, "cat.jpg").unwrap().warning.is_none());
    }

    #[test]
    fn a_truncated_file_of_any_format_is_an_error_or_a_warning() {
        for format in [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::Bmp,
            ImageFormat::Tiff,
            ImageFormat::WebP,
            ImageFormat::Pnm,
            // (TGA has no signature to be told from its bytes; files open by extension.)
            ImageFormat::Ico,
            ImageFormat::Hdr,
            ImageFormat::Qoi,
        ] {
            let bytes = sample_as(format);
            let whole = decode_bytes(&bytes, "x");
            assert!(
                whole.as_ref().is_ok_and(|d| d.warning.is_none()),
                "{format:?}: {:?}",
                whole.err()
            );
            for keep in [0.3, 0.6, 0.9, 0.99] {
                let cut = &bytes[..(bytes.len() as f64 * keep) as usize];
                if let Ok(decoded) = decode_bytes(cut, "x") {
                    assert!(
                        decoded.warning.is_some(),
                        "{format:?} cut to {keep} of its bytes decodes silently"
                    );
                }
            }
        }
    }
}
