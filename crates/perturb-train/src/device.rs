//! Choosing the compute device: burn's `flex` CPU backend or `wgpu` (Vulkan, Metal,
//! DirectX, OpenGL).
//!
//! `Device::wgpu(..)` panics on first use when no adapter exists, so wgpu is only ever
//! opened through `Device::wgpu_options().init()`, which returns an error instead. `auto`
//! first lists the adapters without opening one: an opened device starts a runtime whose
//! service thread lives as long as the process, which a CPU run should not pay for.

use burn::prelude::Device;
use burn::tensor::wgpu::wgpu::{self, DeviceType};
use burn::tensor::wgpu::WgpuBackend;
use perturb_core::{Error, Result};

/// What `--device` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceChoice {
    /// wgpu on a hardware Vulkan, Metal or DirectX 12 adapter if one answers, else the
    /// CPU backend.
    Auto,
    Cpu,
    /// wgpu on any adapter, software renderers (lavapipe, llvmpipe) included; an error if
    /// none exists. `wgpu:vulkan` (metal, dx12, gl) pins the graphics API; plain `wgpu`
    /// lets the runtime take the first API this machine has an adapter for.
    Wgpu(WgpuBackend),
}

impl std::str::FromStr for DeviceChoice {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "wgpu" => Ok(DeviceChoice::Wgpu(WgpuBackend::Auto)),
            "wgpu:vulkan" => Ok(DeviceChoice::Wgpu(WgpuBackend::Vulkan)),
            "wgpu:metal" => Ok(DeviceChoice::Wgpu(WgpuBackend::Metal)),
            "wgpu:dx12" => Ok(DeviceChoice::Wgpu(WgpuBackend::Dx12)),
            "wgpu:gl" => Ok(DeviceChoice::Wgpu(WgpuBackend::Gl)),
            other => Err(format!("'{other}' is not one of auto, cpu, wgpu, wgpu:vulkan, wgpu:metal, wgpu:dx12, wgpu:gl")),
        }
    }
}

/// The device that will run, and a line saying which and why.
#[derive(Debug, Clone)]
pub struct Selected {
    pub device: Device,
    /// Short, for tables: `cpu` or `wgpu <adapter>`.
    pub name: String,
    /// The name and why this device was chosen, for logs.
    pub description: String,
}

/// Opens wgpu's default adapter: (device, adapter name, is a software renderer).
fn open_wgpu(api: WgpuBackend) -> std::result::Result<(Device, String, bool), String> {
    // wgpu reports a missing adapter as an error here, but a broken driver can still
    // panic inside it; neither may take the process down.
    let opened = std::panic::catch_unwind(|| Device::wgpu_options().graphics_api(api).init_with_setup());
    match opened {
        Ok(Ok((device, setup))) => {
            let info = setup.adapter.get_info();
            Ok((device, format!("{} ({:?})", info.name, info.backend), info.device_type == DeviceType::Cpu))
        }
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("the wgpu runtime panicked while looking for an adapter".to_string()),
    }
}

/// The Vulkan, Metal and DirectX 12 adapters wgpu can see, listed without opening any.
/// OpenGL is left out: listing it costs half a second per process (EGL), and a machine
/// whose only hardware adapter speaks GL can still ask for `--device wgpu:gl`.
fn list_adapters() -> Vec<wgpu::AdapterInfo> {
    std::panic::catch_unwind(|| {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
        block_on(instance.enumerate_adapters(wgpu::Backends::PRIMARY)).iter().map(wgpu::Adapter::get_info).collect()
    })
    .unwrap_or_default()
}

/// Drives a future that needs no executor (native adapter enumeration completes at once).
fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
        std::thread::yield_now();
    }
}

pub fn select(choice: DeviceChoice) -> Result<Selected> {
    let cpu = || Selected { device: Device::flex(), name: "cpu".to_string(), description: "cpu (burn flex backend)".to_string() };
    let wgpu = |device, adapter: String| Selected { device, name: format!("wgpu {adapter}"), description: format!("wgpu on {adapter}") };
    match choice {
        DeviceChoice::Cpu => Ok(cpu()),
        DeviceChoice::Wgpu(api) => match open_wgpu(api) {
            Ok((device, adapter, _)) => Ok(wgpu(device, adapter)),
            Err(e) => Err(Error::bad_option("--device", format!("wgpu was asked for but no adapter is available ({e}); use --device cpu or auto"))),
        },
        DeviceChoice::Auto => {
            let adapters = list_adapters();
            if !adapters.iter().any(|a| a.device_type != DeviceType::Cpu) {
                let why = match adapters.first() {
                    // A software renderer runs the same kernels far slower than the CPU backend.
                    Some(a) => format!("the only wgpu adapter, {} ({:?}), is a software renderer", a.name, a.backend),
                    None => "no wgpu adapter".to_string(),
                };
                return Ok(Selected { description: format!("cpu (burn flex backend; {why})"), ..cpu() });
            }
            match open_wgpu(WgpuBackend::Auto) {
                Ok((device, adapter, false)) => Ok(wgpu(device, adapter)),
                Ok((_, adapter, true)) => Ok(Selected { description: format!("cpu (burn flex backend; wgpu opened {adapter}, a software renderer)"), ..cpu() }),
                Err(e) => Ok(Selected { description: format!("cpu (burn flex backend; no wgpu adapter: {e})"), ..cpu() }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_always_gives_a_device_and_says_which() {
        let s = select(DeviceChoice::Auto).expect("auto never fails");
        assert!(s.description.starts_with("cpu") || s.description.starts_with("wgpu"), "{}", s.description);
        assert!(select(DeviceChoice::Cpu).unwrap().description.starts_with("cpu"));
        assert!("gpu".parse::<DeviceChoice>().unwrap_err().starts_with("'gpu' is not one of auto, cpu, wgpu"));
        assert_eq!("wgpu:gl".parse::<DeviceChoice>(), Ok(DeviceChoice::Wgpu(WgpuBackend::Gl)));
    }

    /// No Linux machine has a Metal adapter: asking for it explicitly is the error a user
    /// sees when the device they named is not there, and it must not panic.
    #[cfg(target_os = "linux")]
    #[test]
    fn an_explicit_api_without_an_adapter_is_a_clear_error() {
        let e = select(DeviceChoice::Wgpu(WgpuBackend::Metal)).unwrap_err().to_string();
        assert!(e.contains("--device") && e.contains("no adapter"), "{e}");
    }
}
