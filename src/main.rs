fn main() {
    println!("hi")
}
