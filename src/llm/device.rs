//! Choosing where the model runs: the CPU, a CUDA GPU or Metal, from a user's `--device`
//! text. `auto` takes a GPU when this build has the backend (cargo features `cuda`, `metal`)
//! and the machine has the device, else the CPU. CPU threads are rayon's (RAYON_NUM_THREADS).

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use super::error::LlmError;

/// A device request, before it is checked against the build and the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    Cpu,
    /// A CUDA GPU by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
    Metal,
    /// The best available device.
    #[default]
    Auto,
}

impl FromStr for DeviceChoice {
    type Err = LlmError;

    /// Parses `cpu`, `cuda`, `cuda:N`, `metal`, `auto` (case-insensitive).
    fn from_str(s: &str) -> Result<DeviceChoice, LlmError> {
        let lower = s.trim().to_ascii_lowercase();
        let bad = |reason: &str| LlmError::Device {
            choice: s.to_string(),
            reason: reason.to_string(),
        };
        match lower.as_str() {
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" | "gpu" => Ok(DeviceChoice::Cuda(0)),
            "metal" => Ok(DeviceChoice::Metal),
            "auto" => Ok(DeviceChoice::Auto),
            other => match other.strip_prefix("cuda:") {
                Some(n) => n
                    .parse()
                    .map(DeviceChoice::Cuda)
                    .map_err(|_| bad("the CUDA ordinal after `cuda:` must be a number")),
                None => Err(bad("expected cpu, cuda, cuda:N, metal or auto")),
            },
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(n) => write!(f, "cuda:{n}"),
            DeviceChoice::Metal => f.write_str("metal"),
            DeviceChoice::Auto => f.write_str("auto"),
        }
    }
}

impl DeviceChoice {
    /// Opens the device; an explicit GPU request that cannot be met is an error (never a
    /// silent fall back to the CPU), `auto` falls back and says so in the log.
    pub fn resolve(self) -> Result<Device, LlmError> {
        let fail = |reason: String| LlmError::Device {
            choice: self.to_string(),
            reason,
        };
        let device = match self {
            DeviceChoice::Cpu => Device::Cpu,
            DeviceChoice::Cuda(n) => {
                if !cfg!(feature = "cuda") {
                    return Err(fail(
                        "this build has no CUDA support (rebuild with `--features cuda`)".into(),
                    ));
                }
                Device::new_cuda(n).map_err(|e| fail(e.to_string()))?
            }
            DeviceChoice::Metal => {
                if !cfg!(feature = "metal") {
                    return Err(fail(
                        "this build has no Metal support (rebuild with `--features metal`)".into(),
                    ));
                }
                Device::new_metal(0).map_err(|e| fail(e.to_string()))?
            }
            DeviceChoice::Auto => auto_device(),
        };
        tracing::info!(requested = %self, device = describe(&device), "model device");
        Ok(device)
    }
}

fn auto_device() -> Device {
    if cfg!(feature = "cuda") && candle_core::utils::cuda_is_available() {
        match Device::new_cuda(0) {
            Ok(d) => return d,
            Err(e) => {
                tracing::warn!(error = %e, "CUDA is available but cannot be opened; trying others")
            }
        }
    }
    if cfg!(feature = "metal") && candle_core::utils::metal_is_available() {
        match Device::new_metal(0) {
            Ok(d) => return d,
            Err(e) => {
                tracing::warn!(error = %e, "Metal is available but cannot be opened; using the CPU")
            }
        }
    }
    Device::Cpu
}

/// A short human name for a device (`cpu (2 threads)`, `cuda:0`, `metal`).
pub fn describe(device: &Device) -> String {
    match device.location() {
        candle_core::DeviceLocation::Cpu => {
            format!("cpu ({} threads)", candle_core::utils::get_num_threads())
        }
        candle_core::DeviceLocation::Cuda { gpu_id } => format!("cuda:{gpu_id}"),
        candle_core::DeviceLocation::Metal { gpu_id } => format!("metal:{gpu_id}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_device_names() {
        let cases = [
            ("cpu", Some(DeviceChoice::Cpu)),
            ("CPU", Some(DeviceChoice::Cpu)),
            ("cuda", Some(DeviceChoice::Cuda(0))),
            ("cuda:1", Some(DeviceChoice::Cuda(1))),
            ("metal", Some(DeviceChoice::Metal)),
            (" auto ", Some(DeviceChoice::Auto)),
            ("cuda:x", None),
            ("tpu", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(text.parse::<DeviceChoice>().ok(), expected, "{text:?}");
        }
        for choice in [
            DeviceChoice::Cpu,
            DeviceChoice::Cuda(3),
            DeviceChoice::Metal,
            DeviceChoice::Auto,
        ] {
            assert_eq!(choice.to_string().parse::<DeviceChoice>().unwrap(), choice);
        }
    }

    #[test]
    fn cpu_and_auto_resolve() {
        assert!(DeviceChoice::Cpu.resolve().unwrap().is_cpu());
        // Auto always yields some device.
        DeviceChoice::Auto.resolve().unwrap();
        if !cfg!(feature = "cuda") {
            let err = DeviceChoice::Cuda(0).resolve().unwrap_err();
            assert!(err.to_string().contains("--features cuda"), "{err}");
        }
    }
}
