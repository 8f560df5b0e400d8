pub mod sportlink;
