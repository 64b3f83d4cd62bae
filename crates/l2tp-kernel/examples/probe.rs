//! Prints whether this kernel has L2TP support (exit 0) or why not (exit 1).
//! Run: `cargo run -p l2tp-kernel --example probe [netlink|legacy]`.

use l2tp_kernel::{DataPlaneMode, KernelDataPlane};

fn main() {
    let mode: DataPlaneMode = std::env::args()
        .nth(1)
        .as_deref()
        .unwrap_or("netlink")
        .parse()
        .unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        });
    match KernelDataPlane::new(mode) {
        Ok(dp) => println!(
            "{mode}: kernel L2TP available (netlink: {})",
            dp.has_netlink()
        ),
        Err(e) => {
            eprintln!("{mode}: {e}");
            std::process::exit(1);
        }
    }
}
