//! Fuzz target `hidden`: see `l2tp_fuzz::harness::hidden`.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    l2tp_fuzz::harness::hidden(data);
});
