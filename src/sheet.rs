//! Figure sheets: a view's images composed at their own resolution on a white page, each with a
//! caption (what it is, its PSNR) set in a font that ships with inrlab, for papers and talks.
//! The window's *Export view* and `inrlab run` (trajectory.png, scales.png, compare.png) both
//! build a [`Sheet`] and render it here, so the two agree.

use std::sync::Arc;

use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use egui::ColorImage;
use image::{Rgb, RgbImage};

/// The monospaced face egui ships (Hack, from DejaVu Sans Mono: Greek, superscripts, dashes),
/// so captions render the same on every machine without a system font.
pub const FONT: &[u8] = epaint_default_fonts::HACK_REGULAR;

/// Cells smaller than this are magnified (nearest neighbour, by a whole factor) so that their
/// captions fit under them.
pub const MIN_CELL_PX: usize = 128;
const MARGIN_PX: u32 = 16;
const GAP_PX: u32 = 10;
const INK: Rgb<u8> = Rgb([20, 22, 26]);
const DIM_INK: Rgb<u8> = Rgb([95, 100, 110]);
const PAPER: Rgb<u8> = Rgb([255, 255, 255]);

/// One picture with its caption: a title line ("step 20", "rollout 64²") and a value line
/// ("27.41 dB"), either may be empty; and optionally a heading above it (the method's name).
#[derive(Clone)]
pub struct SheetCell {
    pub heading: String,
    pub image: Arc<ColorImage>,
    pub title: String,
    pub value: String,
}

/// A row of cells under an optional heading ("iterations 1…5 at step 120").
#[derive(Clone, Default)]
pub struct SheetRow {
    pub heading: Option<String>,
    pub cells: Vec<SheetCell>,
}

/// A titled page of rows. Every cell is drawn at the same side: the largest image's, at least
/// [`MIN_CELL_PX`], so a row of levels 4² … 128² shows each level magnified to the finest.
#[derive(Clone, Default)]
pub struct Sheet {
    pub title: String,
    /// A second, dimmer line: the image, working size, backend.
    pub subtitle: String,
    pub rows: Vec<SheetRow>,
    /// Cells per line before a row wraps (a 40-step trajectory is 8 wide, 5 high).
    pub columns: usize,
    /// Cells are at least this side (and [`MIN_CELL_PX`]): sheets of a few pictures with long
    /// captions (sparse, super-resolution) magnify a 128² image twice.
    pub min_cell_px: usize,
}

impl SheetCell {
    pub fn new(image: Arc<ColorImage>, title: impl Into<String>, value: impl Into<String>) -> Self {
        SheetCell {
            heading: String::new(),
            image,
            title: title.into(),
            value: value.into(),
        }
    }

    /// An empty slot, so that the cells after it line up with those of other rows (the level
    /// nothing predicts).
    pub fn blank() -> Self {
        SheetCell::new(Arc::new(ColorImage::new([0, 0], Vec::new())), "", "")
    }
}

impl Sheet {
    pub fn new(title: impl Into<String>, subtitle: impl Into<String>) -> Self {
        Sheet {
            title: title.into(),
            subtitle: subtitle.into(),
            rows: Vec::new(),
            columns: 8,
            min_cell_px: MIN_CELL_PX,
        }
    }

    pub fn row(mut self, heading: Option<String>, cells: Vec<SheetCell>) -> Self {
        if !cells.is_empty() {
            self.rows.push(SheetRow { heading, cells });
        }
        self
    }

    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(|row| row.cells.is_empty())
    }

    /// The side every cell is drawn at.
    pub fn cell_side(&self) -> usize {
        let largest = self
            .rows
            .iter()
            .flat_map(|row| &row.cells)
            .map(|cell| cell.image.size[0].max(cell.image.size[1]))
            .max()
            .unwrap_or(0);
        largest.max(MIN_CELL_PX).max(self.min_cell_px)
    }

    /// Room for the cells' headings of `row`: a line if any cell has one.
    fn heading_h(row: &SheetRow, line: u32) -> u32 {
        if row.cells.iter().any(|cell| !cell.heading.is_empty()) {
            line + 2
        } else {
            0
        }
    }

    /// The page: title and subtitle, then each row (its heading above it), cells left to right
    /// wrapping after [`Sheet::columns`], each caption under its picture.
    pub fn render(&self) -> RgbImage {
        let font = FontRef::try_from_slice(FONT).expect("the bundled font parses");
        let side = self.cell_side() as u32;
        // Captions scale with the pictures: legible on a 128² cell, not tiny beside a 512² one.
        let caption_px = (side as f32 / 11.0).clamp(13.0, 26.0);
        let title_px = (caption_px * 1.35).max(18.0);
        let line = |px: f32| (px * 1.25).ceil() as u32;
        let columns = self.columns.max(1);
        let widest = self
            .rows
            .iter()
            .map(|row| row.cells.len().min(columns))
            .max()
            .unwrap_or(1)
            .max(1) as u32;
        let caption_h = 2 * line(caption_px) + 4;
        let cell_h = side + caption_h;
        let mut height = MARGIN_PX + line(title_px) + line(caption_px) + GAP_PX;
        for row in &self.rows {
            if row.heading.is_some() {
                height += line(caption_px) + 2;
            }
            let lines = row.cells.len().div_ceil(columns) as u32;
            height += lines * (cell_h + GAP_PX + Self::heading_h(row, line(caption_px)));
        }
        height += MARGIN_PX - GAP_PX.min(MARGIN_PX);
        let text_width = |text: &str, px: f32| measure(&font, text, px).ceil() as u32;
        let width = (2 * MARGIN_PX + widest * side + (widest - 1) * GAP_PX)
            .max(2 * MARGIN_PX + text_width(&self.title, title_px))
            .max(2 * MARGIN_PX + text_width(&self.subtitle, caption_px));
        let mut page = RgbImage::from_pixel(width, height.max(1), PAPER);
        let mut y = MARGIN_PX;
        draw_text(
            &mut page,
            &font,
            &self.title,
            MARGIN_PX,
            y,
            title_px,
            INK,
            width,
        );
        y += line(title_px);
        draw_text(
            &mut page,
            &font,
            &self.subtitle,
            MARGIN_PX,
            y,
            caption_px,
            DIM_INK,
            width,
        );
        y += line(caption_px) + GAP_PX;
        for row in &self.rows {
            if let Some(heading) = &row.heading {
                draw_text(
                    &mut page, &font, heading, MARGIN_PX, y, caption_px, INK, width,
                );
                y += line(caption_px) + 2;
            }
            let heading_h = Self::heading_h(row, line(caption_px));
            for chunk in row.cells.chunks(columns) {
                for (i, cell) in chunk.iter().enumerate() {
                    let x = MARGIN_PX + i as u32 * (side + GAP_PX);
                    let limit = x + side;
                    draw_text(
                        &mut page,
                        &font,
                        &cell.heading,
                        x,
                        y,
                        caption_px,
                        INK,
                        limit,
                    );
                }
                y += heading_h;
                for (i, cell) in chunk.iter().enumerate() {
                    let x = MARGIN_PX + i as u32 * (side + GAP_PX);
                    blit_magnified(&mut page, &cell.image, x, y, side);
                    let limit = x + side;
                    let caption_y = y + side + 2;
                    draw_text(
                        &mut page,
                        &font,
                        &cell.title,
                        x,
                        caption_y,
                        caption_px,
                        INK,
                        limit,
                    );
                    draw_text(
                        &mut page,
                        &font,
                        &cell.value,
                        x,
                        caption_y + line(caption_px),
                        caption_px,
                        DIM_INK,
                        limit,
                    );
                }
                y += cell_h + GAP_PX;
            }
        }
        page
    }
}

/// Draws `image` into a `side`×`side` square at (x, y): magnified by the largest whole factor
/// that fits and centred, nearest neighbour, so pixels stay pixels.
fn blit_magnified(page: &mut RgbImage, image: &ColorImage, x: u32, y: u32, side: u32) {
    let [w, h] = image.size;
    if w == 0 || h == 0 {
        return;
    }
    let factor = (side as usize / w.max(h)).max(1);
    // An image larger than the cell (never made here) would be cut: shrink it instead.
    let (out_w, out_h) = if w.max(h) > side as usize {
        let scale = side as f64 / w.max(h) as f64;
        ((w as f64 * scale) as u32, (h as f64 * scale) as u32)
    } else {
        ((w * factor) as u32, (h * factor) as u32)
    };
    let left = x + (side - out_w) / 2;
    let top = y + (side - out_h) / 2;
    for oy in 0..out_h {
        let sy = (oy as usize * h / out_h as usize).min(h - 1);
        for ox in 0..out_w {
            let sx = (ox as usize * w / out_w as usize).min(w - 1);
            let [r, g, b, _] = image.pixels[sy * w + sx].to_array();
            if left + ox < page.width() && top + oy < page.height() {
                page.put_pixel(left + ox, top + oy, Rgb([r, g, b]));
            }
        }
    }
}

/// The advance width of `text` at `px` pixels.
pub fn measure(font: &FontRef, text: &str, px: f32) -> f32 {
    let scaled = font.as_scaled(PxScale::from(px));
    let mut width = 0.0;
    let mut previous = None;
    for c in text.chars() {
        let id = scaled.glyph_id(glyph_char(font, c));
        if let Some(previous) = previous {
            width += scaled.kern(previous, id);
        }
        width += scaled.h_advance(id);
        previous = Some(id);
    }
    width
}

/// `c`, or '?' where the font has no glyph for it (a caption never shows tofu).
fn glyph_char(font: &FontRef, c: char) -> char {
    if font.glyph_id(c).0 == 0 && !c.is_whitespace() {
        '?'
    } else {
        c
    }
}

/// Draws one line of text with its top at `top`, cut with "…" before it passes `right`.
pub fn draw_text(
    page: &mut RgbImage,
    font: &FontRef,
    text: &str,
    left: u32,
    top: u32,
    px: f32,
    color: Rgb<u8>,
    right: u32,
) {
    let available = right.saturating_sub(left) as f32;
    let mut shown: String = text.to_owned();
    if measure(font, &shown, px) > available {
        while !shown.is_empty() && measure(font, &format!("{shown}…"), px) > available {
            shown.pop();
        }
        shown.push('…');
    }
    let scale = PxScale::from(px);
    let scaled = font.as_scaled(scale);
    let baseline = top as f32 + scaled.ascent();
    let mut x = left as f32;
    let mut previous = None;
    for c in shown.chars() {
        let id = scaled.glyph_id(glyph_char(font, c));
        if let Some(previous) = previous {
            x += scaled.kern(previous, id);
        }
        let glyph = id.with_scale_and_position(scale, point(x, baseline));
        x += scaled.h_advance(id);
        previous = Some(id);
        let Some(outline) = font.outline_glyph(glyph) else {
            continue;
        };
        let bounds = outline.px_bounds();
        outline.draw(|gx, gy, coverage| {
            let px_x = bounds.min.x as i64 + gx as i64;
            let px_y = bounds.min.y as i64 + gy as i64;
            if px_x < 0 || px_y < 0 || px_x >= page.width() as i64 || px_y >= page.height() as i64 {
                return;
            }
            let pixel = page.get_pixel_mut(px_x as u32, px_y as u32);
            let alpha = coverage.clamp(0.0, 1.0);
            for channel in 0..3 {
                let under = pixel.0[channel] as f32;
                pixel.0[channel] =
                    (under + (color.0[channel] as f32 - under) * alpha).round() as u8;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(side: usize, value: u8) -> Arc<ColorImage> {
        Arc::new(ColorImage::new(
            [side, side],
            vec![egui::Color32::from_gray(value); side * side],
        ))
    }

    /// Pixels darker than the paper inside a rectangle: where ink went.
    fn ink_in(page: &RgbImage, x0: u32, y0: u32, x1: u32, y1: u32) -> usize {
        (y0..y1.min(page.height()))
            .flat_map(|y| (x0..x1.min(page.width())).map(move |x| (x, y)))
            .filter(|&(x, y)| page.get_pixel(x, y).0[0] < 200)
            .count()
    }

    #[test]
    fn cells_are_magnified_to_the_largest_and_captioned_under_them() {
        let sheet = Sheet::new("trajectory · test", "32² · cpu").row(
            None,
            vec![
                SheetCell::new(grey(32, 40), "step 1", "12.00 dB"),
                SheetCell::new(grey(16, 200), "step 2", "13.50 dB"),
            ],
        );
        assert_eq!(sheet.cell_side(), MIN_CELL_PX);
        let page = sheet.render();
        let side = MIN_CELL_PX as u32;
        assert!(page.width() >= 2 * side + 2 * MARGIN_PX);
        // The first cell is dark grey all over its square (32² magnified 4×).
        let top = page
            .enumerate_pixels()
            .find(|(_, _, p)| p.0 == [40, 40, 40])
            .map(|(_, y, _)| y)
            .unwrap();
        assert_eq!(page.get_pixel(MARGIN_PX, top).0, [40, 40, 40]);
        assert_eq!(
            page.get_pixel(MARGIN_PX + side - 1, top + side - 1).0,
            [40, 40, 40]
        );
        // The second, 16² magnified 8×, fills its square too.
        let second_x = MARGIN_PX + side + GAP_PX;
        assert_eq!(page.get_pixel(second_x, top).0, [200, 200, 200]);
        assert_eq!(
            page.get_pixel(second_x + side - 1, top + side - 1).0,
            [200, 200, 200]
        );
        // Captions put ink under both cells, and the title above them.
        let below = top + side;
        assert!(ink_in(&page, MARGIN_PX, below, MARGIN_PX + side, below + 40) > 40);
        assert!(ink_in(&page, second_x, below, second_x + side, below + 40) > 40);
        assert!(ink_in(&page, 0, 0, page.width(), top) > 80);
    }

    #[test]
    fn long_captions_stop_at_their_cell_and_missing_glyphs_do_not_panic() {
        let font = FontRef::try_from_slice(FONT).unwrap();
        let mut page = RgbImage::from_pixel(300, 40, PAPER);
        let text = "a caption much too long for its cell ρ σ ² … 🦀";
        draw_text(&mut page, &font, text, 10, 5, 14.0, INK, 110);
        assert!(ink_in(&page, 10, 0, 110, 40) > 50);
        assert_eq!(ink_in(&page, 112, 0, 300, 40), 0);
    }

    #[test]
    fn rows_wrap_after_the_column_count() {
        let cells: Vec<_> = (0..5)
            .map(|i| SheetCell::new(grey(8, 90), format!("{i}"), ""))
            .collect();
        let mut sheet = Sheet::new("t", "s").row(Some("heading".into()), cells);
        sheet.columns = 2;
        let page = sheet.render();
        let side = MIN_CELL_PX as u32;
        assert!(page.width() < 3 * side + 2 * MARGIN_PX);
        assert!(page.height() > 3 * side);
    }
}
