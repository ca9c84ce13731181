//! Notifications: the mail subscriber that turns domain events into messages, and the
//! `mail.send` job that renders and hands them to the transport.

pub mod mail;
