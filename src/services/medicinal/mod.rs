//! Medicinal access: the customers' prescriptions and other documents and their review
//! (`documents`), and the gate that decides who may see and buy medicinal products (`gate`).

pub mod documents;
pub mod gate;
