// f32 staging for the register-tiled core (tiled_product.wgsl), under the f32 and float-float
// arithmetics: a slice is held as [slot][row quad] and [slot][column quad] (slot = half·DEPTH +
// k), so those arithmetics read it as vec4s and neighbouring invocations read neighbouring
// vec4s.

// @instantiate

// Two slices of the left operand, [buffer·DEPTH + k][row quad].
var<workgroup> PRODUCT_staged_left: array<array<vec4<f32>, TILE_ROWS / 4u>, 2u * DEPTH>;
// Two slices of the right operand, [buffer·DEPTH + k][column quad].
var<workgroup> PRODUCT_staged_right: array<array<vec4<f32>, TILE_COLUMNS / 4u>, 2u * DEPTH>;

fn PRODUCT_stage_left(slot: u32, row: u32, value: f32) {
    PRODUCT_staged_left[slot][row / 4u][row % 4u] = value;
}

fn PRODUCT_stage_left_quad(slot: u32, row_quad: u32, values: vec4<f32>) {
    PRODUCT_staged_left[slot][row_quad] = values;
}

fn PRODUCT_stage_right(slot: u32, column: u32, value: f32) {
    PRODUCT_staged_right[slot][column / 4u][column % 4u] = value;
}

fn PRODUCT_stage_right_quad(slot: u32, column_quad: u32, values: vec4<f32>) {
    PRODUCT_staged_right[slot][column_quad] = values;
}
