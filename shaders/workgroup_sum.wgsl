// Sums over a 256-invocation workgroup through workgroup memory: the reduction core for
// adapters without subgroup operations. subgroup_sum.wgsl defines the same two functions with
// subgroup operations; src/compute/gpu/reductions.rs puts one of them (and float_float.wgsl)
// in front of each shader that reduces. Every invocation of the workgroup must call them (they
// have barriers), and every one gets the total.

var<workgroup> sum_slots: array<f32, 256>;
var<workgroup> sum_slots_float_float: array<vec2<f32>, 256>;

fn workgroup_sum(flat: u32, value: f32) -> f32 {
    // Earlier readers of slot 0 are done before it is overwritten.
    workgroupBarrier();
    sum_slots[flat] = value;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if flat < half {
            sum_slots[flat] += sum_slots[flat + half];
        }
        workgroupBarrier();
    }
    return sum_slots[0];
}

fn workgroup_sum_float_float(flat: u32, value: vec2<f32>) -> vec2<f32> {
    workgroupBarrier();
    sum_slots_float_float[flat] = value;
    workgroupBarrier();
    for (var half = 128u; half > 0u; half >>= 1u) {
        if flat < half {
            sum_slots_float_float[flat] = add_float_float(sum_slots_float_float[flat], sum_slots_float_float[flat + half]);
        }
        workgroupBarrier();
    }
    return sum_slots_float_float[0];
}
