// The register-tiled product core, written once for every product on the device: the dense
// layers (linear.wgsl), the reservoir step (reservoir.wgsl) and the float-float ridge products
// (gram.wgsl, readout.wgsl). src/compute/gpu/tiled.rs composes a module from a tile header
//
//     const TILE_ROWS: u32 = 128u;    // output rows of one workgroup
//     const TILE_COLUMNS: u32 = 128u; // output columns of one workgroup
//     const DEPTH: u32 = 8u;          // summed elements staged at a time (a multiple of 4)
//
//     const INVOCATIONS: u32 = 256u;  // invocations of one workgroup
//
// (chosen from the adapter's limits and the output's shape), the shared parts of this file, of
// a staging file and of an arithmetic file — tiled_staging.wgsl (f32 staging) with
// tiled_single.wgsl (f32 sums, 8×8 outputs per invocation) or tiled_float_float.wgsl
// (float-float sums, 4×4), or tiled_cooperative.wgsl alone (f16 staging, cooperative-matrix
// fragments) — then the parts of each below their instantiate lines once per product with
// `PRODUCT_` replaced by the product's name (so one module holds several products, each entry
// point using only its own bindings), and the including file. For each product `name` that
// file defines
//
//     fn name_left_value(row: u32, k: u32) -> f32          // A[row][k], 0 outside A
//     fn name_right_value(k: u32, column: u32) -> f32      // B[k][column], 0 outside B
//     const name_left_along_k: bool   // A's consecutive elements run along k (row-major A)
//     const name_right_along_k: bool  // B's consecutive elements run along k (Bᵀ row-major)
//
// and the epilogue its arithmetic file calls (name_write_value or name_write_quad), and calls
// name_multiply_tile then name_write_tile from its entry point, which has
// @workgroup_size(INVOCATIONS).
//
// This file reads the operands from global memory; the staging file says how a slice of them
// is held in workgroup memory (it defines name_stage_left, name_stage_left_quad and their right
// counterparts) and the arithmetic how the staged slices are summed. Operands are staged DEPTH
// deep in two workgroup buffers: while one slice is multiplied, the next one's global loads are
// already in this invocation's registers (one barrier a slice).
// Element quads in one staged slice of each operand, and the loads of them one invocation
// makes (an invocation's last load may fall past the slice when they do not divide evenly).
const LEFT_QUADS: u32 = TILE_ROWS * DEPTH / 4u;
const RIGHT_QUADS: u32 = TILE_COLUMNS * DEPTH / 4u;
const LEFT_LOADS: u32 = (LEFT_QUADS + INVOCATIONS - 1u) / INVOCATIONS;
const RIGHT_LOADS: u32 = (RIGHT_QUADS + INVOCATIONS - 1u) / INVOCATIONS;

// First output row of this workgroup's tile: row tiles beyond the per-dimension dispatch limit
// are folded into z.
fn tile_row0(group: vec3<u32>, groups: vec3<u32>) -> u32 {
    return (group.y + group.z * groups.y) * TILE_ROWS;
}

// @instantiate

// The next slice, held in registers while the current one is multiplied.
var<private> PRODUCT_next_left: array<vec4<f32>, LEFT_LOADS>;
var<private> PRODUCT_next_right: array<vec4<f32>, RIGHT_LOADS>;

// End of the sum being multiplied: elements at k ≥ it are staged as zeros whatever the
// including file's value functions would return there.
var<private> PRODUCT_k_end: u32;

fn PRODUCT_left_at(row: u32, k: u32) -> f32 {
    return select(0.0, PRODUCT_left_value(row, k), k < PRODUCT_k_end);
}

fn PRODUCT_right_at(k: u32, column: u32) -> f32 {
    return select(0.0, PRODUCT_right_value(k, column), k < PRODUCT_k_end);
}

// Four consecutive elements of A starting at (row, k) along its contiguous direction.
fn PRODUCT_left_quad(row: u32, k: u32) -> vec4<f32> {
    if PRODUCT_left_along_k {
        return vec4(PRODUCT_left_at(row, k), PRODUCT_left_at(row, k + 1u), PRODUCT_left_at(row, k + 2u), PRODUCT_left_at(row, k + 3u));
    }
    return vec4(PRODUCT_left_at(row, k), PRODUCT_left_at(row + 1u, k), PRODUCT_left_at(row + 2u, k), PRODUCT_left_at(row + 3u, k));
}

fn PRODUCT_right_quad(k: u32, column: u32) -> vec4<f32> {
    if PRODUCT_right_along_k {
        return vec4(PRODUCT_right_at(k, column), PRODUCT_right_at(k + 1u, column), PRODUCT_right_at(k + 2u, column), PRODUCT_right_at(k + 3u, column));
    }
    return vec4(PRODUCT_right_at(k, column), PRODUCT_right_at(k, column + 1u), PRODUCT_right_at(k, column + 2u), PRODUCT_right_at(k, column + 3u));
}

// Global loads of the slice starting at k0 into registers. Load e of invocation t covers
// element quad q = t + e·INVOCATIONS of the slice; along k a quad is (row, 4 k's), otherwise
// (4 rows, one k), so consecutive invocations read consecutive addresses either way.
fn PRODUCT_load_slice(t: u32, row0: u32, column0: u32, k0: u32) {
    for (var e = 0u; e < LEFT_LOADS; e++) {
        let q = t + e * INVOCATIONS;
        if q >= LEFT_QUADS {
            break;
        }
        if PRODUCT_left_along_k {
            PRODUCT_next_left[e] = PRODUCT_left_quad(row0 + q / (DEPTH / 4u), k0 + 4u * (q % (DEPTH / 4u)));
        } else {
            PRODUCT_next_left[e] = PRODUCT_left_quad(row0 + 4u * (q % (TILE_ROWS / 4u)), k0 + q / (TILE_ROWS / 4u));
        }
    }
    for (var e = 0u; e < RIGHT_LOADS; e++) {
        let q = t + e * INVOCATIONS;
        if q >= RIGHT_QUADS {
            break;
        }
        if PRODUCT_right_along_k {
            PRODUCT_next_right[e] = PRODUCT_right_quad(k0 + 4u * (q % (DEPTH / 4u)), column0 + q / (DEPTH / 4u));
        } else {
            PRODUCT_next_right[e] = PRODUCT_right_quad(k0 + q / (TILE_COLUMNS / 4u), column0 + 4u * (q % (TILE_COLUMNS / 4u)));
        }
    }
}

// Hands the registers of PRODUCT_load_slice to the staging file for staging buffer `half`, by
// slot (half·DEPTH + k) and row or column, whatever the operands' layout.
fn PRODUCT_store_slice(t: u32, half: u32) {
    let base = half * DEPTH;
    for (var e = 0u; e < LEFT_LOADS; e++) {
        let q = t + e * INVOCATIONS;
        if q >= LEFT_QUADS {
            break;
        }
        if PRODUCT_left_along_k {
            let row = q / (DEPTH / 4u);
            let k = 4u * (q % (DEPTH / 4u));
            for (var c = 0u; c < 4u; c++) {
                PRODUCT_stage_left(base + k + c, row, PRODUCT_next_left[e][c]);
            }
        } else {
            PRODUCT_stage_left_quad(base + q / (TILE_ROWS / 4u), q % (TILE_ROWS / 4u), PRODUCT_next_left[e]);
        }
    }
    for (var e = 0u; e < RIGHT_LOADS; e++) {
        let q = t + e * INVOCATIONS;
        if q >= RIGHT_QUADS {
            break;
        }
        if PRODUCT_right_along_k {
            let column = q / (DEPTH / 4u);
            let k = 4u * (q % (DEPTH / 4u));
            for (var c = 0u; c < 4u; c++) {
                PRODUCT_stage_right(base + k + c, column, PRODUCT_next_right[e][c]);
            }
        } else {
            PRODUCT_stage_right_quad(base + q / (TILE_COLUMNS / 4u), q % (TILE_COLUMNS / 4u), PRODUCT_next_right[e]);
        }
    }
}

// This invocation's block of Σ_{k in [k_begin, k_end)} A[row][k]·B[k][column] over the
// workgroup's tile at (row0, column0), in the arithmetic file's accumulators. Every invocation
// of the workgroup must call it (it has barriers).
fn PRODUCT_multiply_tile(t: u32, row0: u32, column0: u32, k_begin: u32, k_end: u32) {
    PRODUCT_clear_block();
    if k_begin >= k_end {
        return;
    }
    PRODUCT_k_end = k_end;
    let slices = (k_end - k_begin + DEPTH - 1u) / DEPTH;
    PRODUCT_load_slice(t, row0, column0, k_begin);
    PRODUCT_store_slice(t, 0u);
    workgroupBarrier();
    for (var s = 0u; s < slices; s++) {
        let more = s + 1u < slices;
        if more {
            PRODUCT_load_slice(t, row0, column0, k_begin + (s + 1u) * DEPTH);
        }
        PRODUCT_multiply_slice(t, s % 2u);
        if more {
            PRODUCT_store_slice(t, (s + 1u) % 2u);
        }
        workgroupBarrier();
    }
}
