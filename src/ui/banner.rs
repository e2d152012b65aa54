//! The banners above the view: errors, warnings and "saved" notices, each one line with its
//! buttons at the right end. The app decides which to show; this draws them.

use egui::{Color32, RichText};

use crate::ui::palette;

/// How a banner above the view looks: background, edge and the mark before its text.
pub struct BannerStyle {
    fill: Color32,
    edge: Color32,
    mark: &'static str,
}

pub const BANNER_ERROR: BannerStyle = BannerStyle {
    fill: Color32::from_rgb(70, 28, 24),
    edge: palette::BAD,
    mark: "!",
};

pub const BANNER_SAVED: BannerStyle = BannerStyle {
    fill: Color32::from_rgb(22, 52, 34),
    edge: palette::GOOD,
    mark: "»",
};

pub const BANNER_WARNING: BannerStyle = BannerStyle {
    fill: Color32::from_rgb(60, 50, 18),
    edge: palette::ACCENT,
    // egui's fonts have no "⚠" (a missing glyph panics in its tests): the colour tells them
    // apart.
    mark: "!",
};

/// A one-line banner with a button at its right end; whether the button was clicked.
pub fn banner_ui(ui: &mut egui::Ui, style: &BannerStyle, text: &str, button: &str) -> bool {
    banner_buttons_ui(ui, style, text, &[button]) == Some(0)
}

/// A banner with several buttons, right to left in the order given; which one was clicked.
/// The buttons are laid out first, so a long text wraps in the room left beside them instead of
/// pushing them out of the window.
pub fn banner_buttons_ui(
    ui: &mut egui::Ui,
    style: &BannerStyle,
    text: &str,
    buttons: &[&str],
) -> Option<usize> {
    let mut clicked = None;
    egui::Frame::new()
        .fill(style.fill)
        .stroke(egui::Stroke::new(1.0, style.edge))
        .corner_radius(4.0)
        .inner_margin(8.0)
        .show(ui, |ui| {
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Min), |ui| {
                for (index, button) in buttons.iter().enumerate() {
                    if ui.button(*button).clicked() {
                        clicked = Some(index);
                    }
                }
                ui.with_layout(egui::Layout::left_to_right(egui::Align::Min), |ui| {
                    ui.label(
                        RichText::new(style.mark)
                            .strong()
                            .color(style.edge)
                            .size(16.0),
                    );
                    ui.add(
                        egui::Label::new(RichText::new(text).color(palette::TEXT_STRONG)).wrap(),
                    );
                });
            });
        });
    ui.add_space(4.0);
    clicked
}
