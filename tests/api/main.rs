//! The integration suite: HTTP against the real router, a fresh database per test.
//! Runs on SQLite by default; set TEST_DATABASE_URL=postgres://... to run it on PostgreSQL.

mod addresses;
mod admin;
mod audit_snapshot;
mod auth;
mod cart;
mod catalog;
mod checkout;
mod contract;
mod coupons;
mod dispatch;
mod edge;
mod events;
mod flow;
mod graphql_limits;
mod helpers;
mod http;
mod import_export;
mod integrity;
mod jobs;
mod lean_reads;
mod medicinal;
mod mp;
mod orders;
mod outage;
mod payments;
mod response_cache;
mod restart;
mod reviews;
mod sim_flow;
mod sim_mp;
mod sim_webpay;
mod simulators;
mod uploads;
mod users;
mod webpay;
