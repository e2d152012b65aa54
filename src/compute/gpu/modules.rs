//! Every shader module the backend builds, listed by file, for the validation tests.

use super::{
    display, elementwise, fourier, gelu, gram, grids, haar, linear, loss, optim, reduce,
    reductions, reservoir, ssim, tiled, upsample,
};

/// The WGSL files used as they are, by file name.
const PLAIN_SHADERS: &[(&str, &str)] = &[
    ("display.wgsl", display::SOURCE),
    ("elementwise.wgsl", elementwise::SOURCE),
    ("fourier.wgsl", fourier::SOURCE),
    ("gelu.wgsl", gelu::SOURCE),
    ("grids.wgsl", grids::SOURCE),
    ("haar.wgsl", haar::SOURCE),
    ("optim.wgsl", optim::SOURCE),
    ("upsample.wgsl", upsample::SOURCE),
];

/// The files built on the register-tiled core, with the products each defines and whether
/// they reduce (are composed with a reduction core).
const TILED_SHADERS: &[(&str, &str, &[&str], bool)] = &[
    ("linear.wgsl", linear::SOURCE, linear::PRODUCTS, true),
    (
        "reservoir.wgsl",
        reservoir::SOURCE,
        reservoir::PRODUCTS,
        false,
    ),
];

/// The plain files composed with a reduction core.
const REDUCING_SHADERS: &[(&str, &str)] = &[
    ("loss.wgsl", loss::SOURCE),
    ("reduce.wgsl", reduce::SOURCE),
    ("ssim.wgsl", ssim::SOURCE),
];

/// Every shader module the backend can build, named by file (tile shape, reduction core), for
/// validation in tests: the plain files, each tiled file composed for every tile shape and
/// each reducing one for both reduction cores, and linear.wgsl on cooperative tiles (whose names
/// start "linear.wgsl (Tile"). The names of modules using subgroup operations end in
/// "Subgroup sums)".
pub fn shader_modules() -> Vec<(String, String)> {
    let mut modules: Vec<(String, String)> = PLAIN_SHADERS
        .iter()
        .map(|&(name, source)| (name.to_owned(), source.to_owned()))
        .collect();
    for &(name, source) in REDUCING_SHADERS {
        for core in reductions::CORES {
            modules.push((format!("{name} ({core:?} sums)"), core.compose(source)));
        }
    }
    for &(name, source, products, tiles) in gram::FILES {
        for tile in tiles {
            modules.push((
                format!("{name} ({tile:?} tiles)"),
                tile.tile().compose(source, products),
            ));
        }
    }
    for tile in tiled::cooperative_tiles_to_validate() {
        for core in reductions::CORES {
            modules.push((
                format!("linear.wgsl ({tile:?}, {core:?} sums)"),
                core.compose(&tile.compose(linear::SOURCE, linear::PRODUCTS)),
            ));
        }
    }
    for &(name, source, products, reduces) in TILED_SHADERS {
        for shape in tiled::SHAPES {
            let module = shape.tile().compose(source, products);
            if reduces {
                for core in reductions::CORES {
                    modules.push((
                        format!("{name} ({shape:?} tiles, {core:?} sums)"),
                        core.compose(&module),
                    ));
                }
            } else {
                modules.push((format!("{name} ({shape:?} tiles)"), module));
            }
        }
    }
    modules
}
