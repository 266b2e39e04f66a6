//! zscope firmware for QEMU's `netduinoplus2` (the CI stand-in for the Nucleo board). Run with
//! `qemu-system-arm -M netduinoplus2 -nographic -semihosting-config enable=on,target=native
//! -serial null -serial <dev> -kernel <this ELF>`.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
mod firmware {
    use cortex_m_rt::entry;
    use cortex_m_semihosting::debug;
    use zscope_firmware::board::{self, qemu::BOARD};

    #[entry]
    fn main() -> ! {
        board::run(&BOARD, 115_200)
    }

    #[panic_handler]
    fn panic(_: &core::panic::PanicInfo) -> ! {
        // Make QEMU exit with status 1, so a test sees the failure at once.
        debug::exit(debug::EXIT_FAILURE);
        loop {
            cortex_m::asm::wfi();
        }
    }
}

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!(
        "zscope-firmware-qemu runs in qemu-system-arm: build it with \
         cargo build --release -p zscope-firmware --target thumbv7em-none-eabihf"
    );
    std::process::exit(2);
}
