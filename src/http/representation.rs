//! Objects as the API shows them, for event data: a receiver gets what a GET would return.

use serde::Serialize;
use serde_json::Value;

use super::binary_content::BinaryContentOut;
use super::links::BaseUrl;
use super::message_sets::MessageSetOut;
use super::messages::MessageOut;
use super::schedules::ScheduleOut;
use super::subscriptions::SubscriptionOut;
use crate::model::content::{BinaryContent, Message, MessageSet, Schedule};
use crate::model::subscriptions::Subscription;

fn to_value(out: impl Serialize) -> Value {
    serde_json::to_value(out).expect("wire structs serialize")
}

pub fn schedule(s: &Schedule) -> Value {
    to_value(ScheduleOut::from(s.clone()))
}

pub fn message_set(s: &MessageSet) -> Value {
    to_value(MessageSetOut::from(s.clone()))
}

pub fn message(m: &Message) -> Value {
    to_value(MessageOut::from(m.clone()))
}

pub fn binary_content(origin: &str, b: &BinaryContent) -> Value {
    to_value(BinaryContentOut::new(
        &BaseUrl(origin.to_string()),
        b.clone(),
    ))
}

pub fn subscription(origin: &str, s: &Subscription) -> Value {
    to_value(SubscriptionOut::new(
        &BaseUrl(origin.to_string()),
        s.clone(),
    ))
}
