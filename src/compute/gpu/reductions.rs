//! The reduction core a reducing shader is composed with: `shaders/subgroup_sum.wgsl` where
//! the device has subgroup operations, `shaders/workgroup_sum.wgsl` otherwise. Both define
//! `workgroup_sum` (f32) and `workgroup_sum_float_float`, on top of `float_float.wgsl`.

pub(super) const FLOAT_FLOAT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/float_float.wgsl"
));
const WORKGROUP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/workgroup_sum.wgsl"
));
const SUBGROUP: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/shaders/subgroup_sum.wgsl"
));

/// Which reduction core a module is composed with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SumCore {
    Workgroup,
    Subgroup,
}

pub(super) const CORES: [SumCore; 2] = [SumCore::Workgroup, SumCore::Subgroup];

impl SumCore {
    /// `module` with this core (and float-float arithmetic) in front, after the module's
    /// leading `enable` directives (a cooperative tile's), which WGSL wants before any
    /// declaration. (naga takes subgroup operations without WGSL's `enable subgroups;`, which
    /// it does not parse yet; the device feature gates them.)
    pub(super) fn compose(self, module: &str) -> String {
        let core = match self {
            SumCore::Workgroup => WORKGROUP,
            SumCore::Subgroup => SUBGROUP,
        };
        let directives_end: usize = module
            .split_inclusive('\n')
            .take_while(|line| line.starts_with("enable "))
            .map(str::len)
            .sum();
        let (directives, body) = module.split_at(directives_end);
        format!("{directives}{FLOAT_FLOAT}\n{core}\n{body}")
    }
}

/// A reducing entry point, built for both cores; the backend uses the subgroup one when its
/// device has `wgpu::Features::SUBGROUP`.
pub(super) struct SumKernel {
    workgroup: super::Kernel,
    subgroup: super::Kernel,
}

impl SumKernel {
    pub(super) fn new(kernel: impl Fn() -> super::Kernel) -> Self {
        SumKernel {
            workgroup: kernel().with_sum_core(SumCore::Workgroup),
            subgroup: kernel().with_sum_core(SumCore::Subgroup),
        }
    }

    pub(super) fn pick(&self, subgroups: bool) -> &super::Kernel {
        if subgroups {
            &self.subgroup
        } else {
            &self.workgroup
        }
    }
}
