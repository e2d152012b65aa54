// f32 arithmetic for the register-tiled core (tiled_product.wgsl): each invocation sums an 8×8
// block of the output in registers, rows in two quads (ty and ty + THREAD_ROWS), columns
// likewise. The including file's epilogue is
//
//     fn name_write_value(row: u32, column: u32, sum: f32) // bounds checked by the file

const BLOCK_QUADS: u32 = 2u;
// Invocations along the tile's rows and columns (INVOCATIONS, from the header, is their product).
const THREAD_ROWS: u32 = TILE_ROWS / (4u * BLOCK_QUADS);
const THREAD_COLUMNS: u32 = TILE_COLUMNS / (4u * BLOCK_QUADS);

// @instantiate

// This invocation's 8×8 block: PRODUCT_acc[2i + h] is its row i, column quad h.
var<private> PRODUCT_acc: array<vec4<f32>, 16>;

fn PRODUCT_clear_block() {
    for (var i = 0u; i < 16u; i++) {
        PRODUCT_acc[i] = vec4(0.0);
    }
}

// PRODUCT_acc += the staged slice in buffer `half`.
fn PRODUCT_multiply_slice(t: u32, half: u32) {
    let tx = t % THREAD_COLUMNS;
    let ty = t / THREAD_COLUMNS;
    for (var k = half * DEPTH; k < half * DEPTH + DEPTH; k++) {
        let a0 = PRODUCT_staged_left[k][ty];
        let a1 = PRODUCT_staged_left[k][ty + THREAD_ROWS];
        let b0 = PRODUCT_staged_right[k][tx];
        let b1 = PRODUCT_staged_right[k][tx + THREAD_COLUMNS];
        for (var i = 0u; i < 4u; i++) {
            PRODUCT_acc[2u * i] += a0[i] * b0;
            PRODUCT_acc[2u * i + 1u] += a0[i] * b1;
            PRODUCT_acc[2u * i + 8u] += a1[i] * b0;
            PRODUCT_acc[2u * i + 9u] += a1[i] * b1;
        }
    }
}

// Hands this invocation's 8×8 block to the including file's epilogue.
fn PRODUCT_write_tile(t: u32, row0: u32, column0: u32) {
    let tx = t % THREAD_COLUMNS;
    let ty = t / THREAD_COLUMNS;
    for (var i = 0u; i < 8u; i++) {
        let row = row0 + 4u * (ty + (i / 4u) * THREAD_ROWS) + i % 4u;
        for (var h = 0u; h < 2u; h++) {
            let column = column0 + 4u * (tx + h * THREAD_COLUMNS);
            let sums = PRODUCT_acc[2u * i + h];
            for (var c = 0u; c < 4u; c++) {
                PRODUCT_write_value(row, column + c, sums[c]);
            }
        }
    }
}
