pub mod simulator;
pub mod sportlink;
