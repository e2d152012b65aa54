//! What several test files share.

/// A folder of generated images (discs on graded backgrounds), a text file and a cut-off
/// PNG that must be skipped with a reason.
pub fn make_folder(name: &str, count: u32) -> std::path::PathBuf {
    let folder = std::env::temp_dir().join(format!("inrlab-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&folder);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..count {
        let image = image::RgbImage::from_fn(48, 40, |x, y| {
            let (cx, cy) = (10 + 3 * i, 12 + 2 * i);
            let inside = (x as i32 - cx as i32).pow(2) + (y as i32 - cy as i32).pow(2) < 100;
            if inside {
                image::Rgb([230, (20 * i) as u8, 40])
            } else {
                image::Rgb([(x * 5) as u8, 90, (y * 6) as u8])
            }
        });
        image.save(folder.join(format!("disc{i:02}.png"))).unwrap();
    }
    std::fs::write(folder.join("readme.txt"), "not an image").unwrap();
    let whole = std::fs::read(folder.join("disc00.png")).unwrap();
    std::fs::write(folder.join("cut.png"), &whole[..whole.len() / 3]).unwrap();
    folder
}
