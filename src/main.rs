fn main() {
    std::process::exit(wgnetconf::agent::cli_main());
}
