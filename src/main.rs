fn main() {
    std::process::exit(wgnetconf::cli::main());
}
