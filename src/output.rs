//! Files inrlab writes: written atomically (temporary file, then rename) and never silently
//! overwritten.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use image::RgbImage;

/// What to do when a file is already there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    Refuse,
    Overwrite,
}

/// Checks that none of `paths` exists (unless overwriting), before anything is computed, so a
/// long run does not end in a refusal.
pub fn check_writable(paths: &[PathBuf], existing: Existing) -> anyhow::Result<()> {
    if existing == Existing::Refuse
        && let Some(path) = paths.iter().find(|p| p.exists())
    {
        bail!(
            "{} already exists (pass --overwrite to replace it)",
            path.display()
        );
    }
    Ok(())
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// reader never sees half a file and a crash never leaves one.
pub fn write_atomic(path: &Path, bytes: &[u8], existing: Existing) -> anyhow::Result<()> {
    check_writable(&[path.to_path_buf()], existing)?;
    let directory = path.parent().filter(|p| !p.as_os_str().is_empty());
    if let Some(directory) = directory {
        std::fs::create_dir_all(directory)
            .with_context(|| format!("cannot create {}", directory.display()))?;
    }
    let file_name = path
        .file_name()
        .with_context(|| format!("{} is not a file path", path.display()))?;
    let temporary = path.with_file_name(format!(
        ".{}.{}.tmp",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(error) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Encodes an image as PNG in memory.
pub fn png_bytes(image: &RgbImage) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    image
        .write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .context("cannot encode PNG")?;
    Ok(bytes)
}

/// Encodes an image as PNG in memory with UTF-8 text chunks (keyword, text): the provenance
/// every picture inrlab writes carries ([`crate::provenance`]).
pub fn png_bytes_with_text(image: &RgbImage, text: &[(String, String)]) -> anyhow::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let (width, height) = image.dimensions();
    let mut encoder = png::Encoder::new(&mut bytes, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    for (keyword, value) in text {
        encoder
            .add_itxt_chunk(keyword.clone(), value.clone())
            .context("cannot add a PNG text chunk")?;
    }
    let mut writer = encoder.write_header().context("cannot encode PNG")?;
    writer
        .write_image_data(image.as_raw())
        .context("cannot encode PNG")?;
    writer.finish().context("cannot encode PNG")?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_refuses_to_overwrite_unless_asked() {
        let dir = std::env::temp_dir().join(format!("inrlab-output-{}", std::process::id()));
        let path = dir.join("a.txt");
        let _ = std::fs::remove_dir_all(&dir);
        write_atomic(&path, b"one", Existing::Refuse).unwrap();
        let error = write_atomic(&path, b"two", Existing::Refuse).unwrap_err();
        assert!(error.to_string().contains("already exists"));
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        write_atomic(&path, b"three", Existing::Overwrite).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"three");
        // No temporary files are left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
