//! zscope firmware for the ST Nucleo-F401RE: bring up the board, hand it to the app, loop.
//! `cargo run --release -p zscope-firmware --target thumbv7em-none-eabihf` flashes it through
//! probe-rs (the runner in `.cargo/config.toml`).
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use cortex_m_rt::entry;
    use zscope_firmware::board::{self, nucleo_f401re::BOARD};

    #[entry]
    fn main() -> ! {
        board::run(&BOARD, 115_200)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        // No debugger to report to: stop here, where a probe can see it.
        loop {
            cortex_m::asm::bkpt();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "zscope-firmware runs on the board: \
         cargo run --release -p zscope-firmware --target thumbv7em-none-eabihf"
    );
    std::process::exit(2);
}
