fn main() {
    std::process::exit(vaultctl::cli::main());
}
