//! `cargo xtask demo`: for a person watching. Build, boot the VM and run
//! `integration/demo.sh`: a LAC and an LNS in two namespaces, tunnel, session
//! and PPP up, ping across, the kernel's view of it all, then teardown.

use std::io::IsTerminal;
use std::process::ExitCode;

use anyhow::Result;
use clap::ValueEnum;

use crate::integration::{build, new_results_dir};
use crate::util::{self, shell_join};
use crate::vm::{Boot, Vm, VmOpts};

#[derive(clap::Args)]
/// Show a LAC and an LNS bringing up a tunnel, a session and PPP in a VM.
pub(crate) struct Args {
    /// Implementation on the LAC side.
    #[arg(long, value_enum, default_value_t = Peer::L2tpd)]
    lac: Peer,
    /// Implementation on the LNS side.
    #[arg(long, value_enum, default_value_t = Peer::L2tpd)]
    lns: Peer,
    #[command(flatten)]
    vm: VmOpts,
}

#[derive(Clone, Copy, ValueEnum)]
enum Peer {
    /// This project's daemon.
    L2tpd,
    /// The reference implementation.
    Xl2tpd,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Self::L2tpd => "l2tpd",
            Self::Xl2tpd => "xl2tpd",
        }
    }
}

pub(crate) fn run(args: Args) -> Result<ExitCode> {
    build(false)?;
    let vm = Vm::prepare(&args.vm)?;
    let results = new_results_dir("demo")?;
    let script = util::project_root().join("integration").join("demo.sh");
    let cmd = shell_join([
        "env".to_string(),
        format!("RESULT_DIR={}", results.display()),
        format!(
            "L2TPD_BIN={}",
            util::target_dir().join("debug").join("l2tpd").display()
        ),
        format!("DEMO_LAC={}", args.lac.name()),
        format!("DEMO_LNS={}", args.lns.name()),
        format!("DEMO_COLOR={}", u8::from(std::io::stdout().is_terminal())),
        "bash".into(),
        script.display().to_string(),
    ]);
    let outcome = vm.boot(
        &cmd,
        std::slice::from_ref(&results),
        Boot {
            interactive: false,
            timeout: Some(std::time::Duration::from_secs(600)),
        },
    )?;
    println!("demo logs and capture: {}", results.display());
    Ok(outcome.exit())
}
