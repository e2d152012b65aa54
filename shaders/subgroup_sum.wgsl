// Sums over a 256-invocation workgroup with subgroup operations (wgpu's SUBGROUP feature): each
// subgroup adds its lanes without workgroup memory, one slot per subgroup is written, and every
// subgroup adds the slots again the same way — two barriers instead of workgroup_sum.wgsl's nine.
// The float-float sum is a butterfly of shuffles with add_float_float at every level, so it is
// as exact as the tree it replaces. Slots are indexed flat / subgroup size: 1-D workgroups are
// split into subgroups of consecutive invocations by every driver we know of (not promised by
// the specifications; tests/backend_ops.rs checks both paths against the CPU on lavapipe).

var<workgroup> sum_slots: array<f32, 256>;
var<workgroup> sum_slots_float_float: array<vec2<f32>, 256>;

fn subgroup_sum_float_float(value: vec2<f32>, size: u32) -> vec2<f32> {
    var sum = value;
    for (var offset = 1u; offset < size; offset <<= 1u) {
        sum = add_float_float(sum, vec2(subgroupShuffleXor(sum.x, offset), subgroupShuffleXor(sum.y, offset)));
    }
    return sum;
}

fn workgroup_sum(flat: u32, value: f32) -> f32 {
    let size = subgroupAdd(1u);
    let total = subgroupAdd(value);
    workgroupBarrier();
    if flat % size == 0u {
        sum_slots[flat / size] = total;
    }
    workgroupBarrier();
    var sum = 0.0;
    for (var slot = flat % size; slot < 256u / size; slot += size) {
        sum += sum_slots[slot];
    }
    return subgroupAdd(sum);
}

fn workgroup_sum_float_float(flat: u32, value: vec2<f32>) -> vec2<f32> {
    let size = subgroupAdd(1u);
    let total = subgroup_sum_float_float(value, size);
    workgroupBarrier();
    if flat % size == 0u {
        sum_slots_float_float[flat / size] = total;
    }
    workgroupBarrier();
    var sum = vec2(0.0);
    for (var slot = flat % size; slot < 256u / size; slot += size) {
        sum = add_float_float(sum, sum_slots_float_float[slot]);
    }
    return subgroup_sum_float_float(sum, size);
}
