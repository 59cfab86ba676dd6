//! How long a launch takes: script provisioning vs a prepared image.
//!
//! These are planning estimates, not measurements. Each constant is a round
//! figure for a current-generation instance on a fresh Ubuntu 24.04 base
//! pulling from public mirrors; the reasons are beside each one. They are
//! chosen so that a python-ml-like template (10 apt, 8 conda, 6 pip packages,
//! no custom script) comes to exactly 6 minutes — the "6-minute install" that
//! a prepared AMI turns into a 30-second boot:
//!
//! | step | seconds |
//! |---|---|
//! | boot until cloud-init starts the script ([`SCRIPT_BOOT_SECONDS`]) | 30 |
//! | `apt-get update` / `dnf makecache` ([`SYSTEM_UPDATE_SECONDS`]) | 30 |
//! | 10 apt packages × [`APT_SECONDS_PER_PACKAGE`] | 30 |
//! | conda: Miniforge + solve ([`CONDA_FIXED_SECONDS`]) | 120 |
//! | 8 conda packages × [`CONDA_SECONDS_PER_PACKAGE`] | 120 |
//! | 6 pip packages × [`PIP_SECONDS_PER_PACKAGE`] | 30 |
//! | **total** | **360** |

use serde::Serialize;

/// Boot of a prepared image until the workstation is usable: EC2 start, kernel,
/// cloud-init with nothing to install. About 30 s on current Nitro instances.
pub const AMI_BOOT_SECONDS: u64 = 30;

/// Boot before the provisioning script starts; the same EC2 start and kernel
/// boot as [`AMI_BOOT_SECONDS`]. Part of [`SCRIPT_BASE_SECONDS`].
pub const SCRIPT_BOOT_SECONDS: u64 = 30;

/// Refreshing package indexes (`apt-get update`, or `dnf makecache` on AL2023),
/// which every script does before installing anything.
pub const SYSTEM_UPDATE_SECONDS: u64 = 30;

/// Fixed cost of every script launch: boot plus index refresh (60 s).
pub const SCRIPT_BASE_SECONDS: u64 = SCRIPT_BOOT_SECONDS + SYSTEM_UPDATE_SECONDS;

/// Per apt/dnf package: prebuilt .debs from a regional mirror unpack in a few
/// seconds each, dependencies included.
pub const APT_SECONDS_PER_PACKAGE: u64 = 3;

/// Once per launch with any conda package: downloading and installing
/// Miniforge (~60 s) plus the environment solve (~60 s), which is slow for
/// scientific stacks no matter how few packages are named.
pub const CONDA_FIXED_SECONDS: u64 = 120;

/// Per conda package: each named package pulls a tree of large binary
/// dependencies (numpy, CUDA runtimes, MKL...), so ~15 s each.
pub const CONDA_SECONDS_PER_PACKAGE: u64 = 15;

/// Per pip package: wheels download and unpack without compiling, ~5 s each.
pub const PIP_SECONDS_PER_PACKAGE: u64 = 5;

/// Once per launch with any spack package: cloning spack and bootstrapping its
/// solver and compiler detection.
pub const SPACK_FIXED_SECONDS: u64 = 120;

/// Per spack package: spack builds from source, so ~90 s each even for modest
/// packages (large ones take far longer — treat spack estimates as a floor).
pub const SPACK_SECONDS_PER_PACKAGE: u64 = 90;

/// A template's own `post_install`/`user_data` script: its content is opaque to
/// cws, so a flat minute is assumed.
pub const CUSTOM_SCRIPT_SECONDS: u64 = 60;

/// Fixed part of a cross-region AMI copy: the copy request, snapshot
/// registration and the new image becoming `available`.
pub const COPY_FIXED_SECONDS: u64 = 60;

/// Per snapshot GB when both regions are on the same continent.
pub const COPY_SECONDS_PER_GB_SAME_CONTINENT: u64 = 6;

/// Per snapshot GB when the copy crosses continents (longer paths, lower
/// throughput).
pub const COPY_SECONDS_PER_GB_CROSS_CONTINENT: u64 = 10;

/// How many packages of each kind a template installs, which drives the script
/// setup estimate.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PackageCounts {
    /// apt/dnf packages.
    pub system: usize,
    /// conda packages.
    pub conda: usize,
    /// pip packages.
    pub pip: usize,
    /// spack packages.
    pub spack: usize,
    /// Whether the template runs its own `post_install`/`user_data` script.
    pub custom_script: bool,
}

impl From<(usize, usize, usize, usize)> for PackageCounts {
    /// From `(system, conda, pip, spack)`, the shape
    /// `cws_template::Template::package_counts` returns; `custom_script` is false.
    fn from((system, conda, pip, spack): (usize, usize, usize, usize)) -> PackageCounts {
        PackageCounts {
            system,
            conda,
            pip,
            spack,
            custom_script: false,
        }
    }
}

/// One line of a script setup estimate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct SetupStep {
    /// What the step does, for people.
    pub what: &'static str,
    /// Its estimated duration.
    pub seconds: u64,
}

/// The script setup estimate step by step; the steps sum to
/// [`script_setup_seconds`]. Steps with nothing to do are left out.
pub fn script_setup_breakdown(p: &PackageCounts) -> Vec<SetupStep> {
    let per = |count: usize, secs: u64| (count as u64).saturating_mul(secs);
    let mut steps = vec![
        SetupStep {
            what: "boot",
            seconds: SCRIPT_BOOT_SECONDS,
        },
        SetupStep {
            what: "package index update",
            seconds: SYSTEM_UPDATE_SECONDS,
        },
    ];
    let mut push = |what, seconds| {
        if seconds > 0 {
            steps.push(SetupStep { what, seconds });
        }
    };
    push("system packages", per(p.system, APT_SECONDS_PER_PACKAGE));
    if p.conda > 0 {
        push("conda install and solve", CONDA_FIXED_SECONDS);
        push("conda packages", per(p.conda, CONDA_SECONDS_PER_PACKAGE));
    }
    push("pip packages", per(p.pip, PIP_SECONDS_PER_PACKAGE));
    if p.spack > 0 {
        push("spack bootstrap", SPACK_FIXED_SECONDS);
        push("spack builds", per(p.spack, SPACK_SECONDS_PER_PACKAGE));
    }
    if p.custom_script {
        push("custom script", CUSTOM_SCRIPT_SECONDS);
    }
    steps
}

/// Estimated seconds from launch until a script-provisioned workstation is
/// ready (see the module docs for the model and its constants).
pub fn script_setup_seconds(p: &PackageCounts) -> u64 {
    script_setup_breakdown(p)
        .iter()
        .fold(0, |total: u64, step| total.saturating_add(step.seconds))
}

/// Estimated seconds for copying an image of `snapshot_gb` GB between two
/// regions: [`COPY_FIXED_SECONDS`] plus a per-GB time that is higher when the
/// copy crosses continents.
pub fn copy_seconds(snapshot_gb: u32, same_continent: bool) -> u64 {
    let per_gb = if same_continent {
        COPY_SECONDS_PER_GB_SAME_CONTINENT
    } else {
        COPY_SECONDS_PER_GB_CROSS_CONTINENT
    };
    COPY_FIXED_SECONDS + u64::from(snapshot_gb) * per_gb
}

/// A duration for people: `45 s`, `5.5 min`, `2 min`, `1 h 5 min`.
///
/// Minutes are shown to a tenth under an hour (rounded half-up), hours and
/// whole minutes above.
pub fn format_duration(seconds: u64) -> String {
    if seconds < 60 {
        return format!("{seconds} s");
    }
    let tenths = (seconds.saturating_mul(10).saturating_add(30)) / 60;
    if tenths < 600 {
        return if tenths.is_multiple_of(10) {
            format!("{} min", tenths / 10)
        } else {
            format!("{}.{} min", tenths / 10, tenths % 10)
        };
    }
    let minutes = seconds.saturating_add(30) / 60;
    let (h, m) = (minutes / 60, minutes % 60);
    if m == 0 {
        format!("{h} h")
    } else {
        format!("{h} h {m} min")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_ml_like_template_takes_six_minutes() {
        let p = PackageCounts {
            system: 10,
            conda: 8,
            pip: 6,
            spack: 0,
            custom_script: false,
        };
        assert_eq!(script_setup_seconds(&p), 360);
    }

    #[test]
    fn empty_template_costs_the_base_only() {
        assert_eq!(
            script_setup_seconds(&PackageCounts::default()),
            SCRIPT_BASE_SECONDS
        );
        assert_eq!(SCRIPT_BASE_SECONDS, 60);
    }

    #[test]
    fn each_manager_and_the_custom_script_add_their_documented_cost() {
        let base = SCRIPT_BASE_SECONDS;
        let secs = |p: PackageCounts| script_setup_seconds(&p);
        assert_eq!(
            secs(PackageCounts {
                system: 4,
                ..Default::default()
            }),
            base + 12
        );
        assert_eq!(
            secs(PackageCounts {
                conda: 1,
                ..Default::default()
            }),
            base + 135
        );
        assert_eq!(
            secs(PackageCounts {
                pip: 2,
                ..Default::default()
            }),
            base + 10
        );
        assert_eq!(
            secs(PackageCounts {
                spack: 2,
                ..Default::default()
            }),
            base + 300
        );
        assert_eq!(
            secs(PackageCounts {
                custom_script: true,
                ..Default::default()
            }),
            base + 60
        );
    }

    #[test]
    fn spack_is_the_slowest_manager_per_package() {
        let one = |p: PackageCounts| script_setup_seconds(&p);
        let spack = one(PackageCounts {
            spack: 5,
            ..Default::default()
        });
        for other in [
            PackageCounts {
                system: 5,
                ..Default::default()
            },
            PackageCounts {
                conda: 5,
                ..Default::default()
            },
            PackageCounts {
                pip: 5,
                ..Default::default()
            },
        ] {
            assert!(spack > one(other));
        }
    }

    #[test]
    fn breakdown_sums_to_total_and_skips_empty_steps() {
        let p = PackageCounts {
            system: 3,
            pip: 2,
            custom_script: true,
            ..Default::default()
        };
        let steps = script_setup_breakdown(&p);
        assert_eq!(
            steps.iter().map(|s| s.seconds).sum::<u64>(),
            script_setup_seconds(&p)
        );
        assert!(
            steps
                .iter()
                .all(|s| !s.what.contains("conda") && !s.what.contains("spack"))
        );
    }

    #[test]
    fn huge_counts_saturate_instead_of_overflowing() {
        let p = PackageCounts {
            spack: usize::MAX,
            ..Default::default()
        };
        assert_eq!(script_setup_seconds(&p), u64::MAX);
    }

    #[test]
    fn package_counts_from_template_tuple() {
        let p = PackageCounts::from((10, 8, 6, 0));
        assert_eq!(
            (p.system, p.conda, p.pip, p.spack, p.custom_script),
            (10, 8, 6, 0, false)
        );
    }

    #[test]
    fn copy_time_grows_with_size_and_distance() {
        assert_eq!(copy_seconds(8, true), 108);
        assert!(copy_seconds(9, true) > copy_seconds(8, true));
        assert!(copy_seconds(8, false) > copy_seconds(8, true));
        assert_eq!(copy_seconds(0, false), COPY_FIXED_SECONDS);
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(0), "0 s");
        assert_eq!(format_duration(45), "45 s");
        assert_eq!(format_duration(60), "1 min");
        assert_eq!(format_duration(108), "1.8 min");
        assert_eq!(format_duration(120), "2 min");
        assert_eq!(format_duration(330), "5.5 min");
        assert_eq!(format_duration(360), "6 min");
        assert_eq!(format_duration(3599), "1 h");
        assert_eq!(format_duration(3569), "59.5 min");
        assert_eq!(format_duration(3600), "1 h");
        assert_eq!(format_duration(3900), "1 h 5 min");
    }
}
