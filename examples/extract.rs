// Scratch-only: prints the same output as `paperdigest extract [--json] FILE`.
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let json = args.iter().any(|a| a == "--json");
    let Some(path) = args.iter().find(|a| *a != "--json" && *a != "extract") else {
        eprintln!("usage: extract [--json] FILE.pdf");
        std::process::exit(2);
    };
    match paperdigest::pdf::extract_file(std::path::Path::new(path)) {
        Ok(doc) => {
            if json {
                println!("{}", serde_json::to_string_pretty(&doc).unwrap());
            } else {
                println!("{}", doc.body_text());
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
