//! Money an event carries (a Super Chat's `monetary`, a platform gift's `amount`), and one
//! comparable value for amounts in different currencies, so "top money giver" and a subathon's
//! seconds per unit mean something when a YouTube Super Chat in euros meets a TikTok gift.

use serde_json::Value;

use crate::event::{Event, Kind};

/// Money carried by one event.
#[derive(Clone, Debug, PartialEq)]
pub struct Money {
    pub amount: f64,
    pub currency: String,
    /// As the platform showed it (`"€5.00"`), else `amount currency`.
    pub formatted: String,
    /// [`comparable`] of the amount.
    pub value: f64,
}

/// Approximate US dollars per unit of each currency, for comparing amounts only (never shown
/// as a price). Fixed by hand: a leaderboard must not change order when rates move, and tests
/// must not read the network. TikTok diamonds: what a creator receives per diamond, about
/// half a US cent; Kick's Kicks: about a US cent each (100 Kicks ≈ $1, per GiftDeck's notes
/// in ../shared/notes/multiplatform.md).
const PER_UNIT_USD: &[(&str, f64)] = &[
    ("USD", 1.0),
    ("EUR", 1.08),
    ("GBP", 1.27),
    ("CAD", 0.73),
    ("AUD", 0.66),
    ("NZD", 0.61),
    ("CHF", 1.13),
    ("SEK", 0.095),
    ("NOK", 0.093),
    ("DKK", 0.145),
    ("PLN", 0.25),
    ("CZK", 0.043),
    ("JPY", 0.0067),
    ("KRW", 0.00073),
    ("INR", 0.012),
    ("BRL", 0.18),
    ("MXN", 0.055),
    ("ARS", 0.001),
    ("TRY", 0.03),
    ("PHP", 0.017),
    ("IDR", 0.000062),
    ("TWD", 0.031),
    ("HKD", 0.128),
    ("SGD", 0.74),
    ("ZAR", 0.054),
    ("TIKTOK_DIAMONDS", 0.005),
    ("KICKS", 0.01),
];

/// `amount` of `currency` in approximate US dollars; a currency not in the table counts one
/// to one (it still orders against itself).
pub fn comparable(amount: f64, currency: &str) -> f64 {
    let rate = PER_UNIT_USD
        .iter()
        .find(|(c, _)| c.eq_ignore_ascii_case(currency))
        .map_or(1.0, |(_, r)| *r);
    amount * rate
}

/// The money `event` carries, if any: a tip (a Super Chat, Super Sticker or Kicks) or a
/// platform gift. The chat line a tip came with carries its `monetary` too, but is not counted
/// again.
pub fn of(event: &Event) -> Option<Money> {
    let source = match event.kind {
        Kind::Gift | Kind::Tip => &event.data,
        _ => return None,
    };
    let amount = source["amount"].as_f64().filter(|a| *a > 0.0)?;
    let currency = source["currency"].as_str().unwrap_or_default().to_string();
    let formatted = match source["formatted"].as_str().filter(|f| !f.is_empty()) {
        Some(f) => f.to_string(),
        None => format_amount(amount, &currency),
    };
    Some(Money {
        value: comparable(amount, &currency),
        amount,
        currency,
        formatted,
    })
}

/// `amount` of `currency` as shown when the platform gave no text: `$5.00`, `€5.00`,
/// `500 Kicks`, `5 TIKTOK_DIAMONDS`.
pub fn format_amount(amount: f64, currency: &str) -> String {
    match currency {
        "USD" => format!("${amount:.2}"),
        "EUR" => format!("€{amount:.2}"),
        "GBP" => format!("£{amount:.2}"),
        "KICKS" => format!("{} Kicks", trim_number(amount)),
        _ => format!("{} {currency}", trim_number(amount)),
    }
}

/// The tip a paid chat line (`data` of a `chat.message` with a `monetary` amount above 0)
/// alerts as: who, how much (with its comparable `value`), and what they wrote.
pub fn tip_of(chat: &Value) -> Option<Value> {
    let m = &chat["monetary"];
    let amount = m["amount"].as_f64().filter(|a| *a > 0.0)?;
    let currency = m["currency"].as_str().unwrap_or_default();
    let a = &chat["author"];
    let kind = if !chat["sticker"].is_null() {
        "supersticker"
    } else if currency == "KICKS" {
        "kicks"
    } else {
        "superchat"
    };
    Some(serde_json::json!({
        "user_name": a["display_name"], "user_login": a["login"], "user_id": a["id"],
        "type": kind, "amount": amount, "currency": currency,
        "formatted": m["formatted"].as_str().filter(|f| !f.is_empty()).map_or_else(|| format_amount(amount, currency), str::to_string),
        "value": comparable(amount, currency),
        "message": chat["text"], "sticker": chat["sticker"], "color": m["color"],
        "message_id": chat["message_id"],
    }))
}

/// Sets a tip's or gift's comparable `value` from its amount and currency, whoever made it (a
/// source, `POST /api/events`, a recording), as it is published.
pub fn annotate(event: &mut Event) {
    if !matches!(event.kind, Kind::Tip | Kind::Gift) || event.data["value"].is_number() {
        return;
    }
    if let Some(m) = of(event) {
        event.data["value"] = serde_json::json!(m.value);
    }
}

/// `value` (approximate US dollars) as a leaderboard shows it.
pub fn format_value(value: f64) -> String {
    format!("${value:.2}")
}

/// `5`, `5.5`, never `5.000000001`.
pub fn trim_number(n: f64) -> String {
    let text = format!("{n:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A number in event data, whatever JSON type a source used.
pub fn number(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Platform;
    use serde_json::json;

    #[test]
    fn tips_and_gifts_carry_money_and_their_chat_lines_are_not_counted_again() {
        let line = json!({"author": {"login": "ann", "display_name": "Ann", "id": "1"},
            "text": "hi", "sticker": null, "message_id": "m1",
            "monetary": {"amount": 5.0, "currency": "EUR", "formatted": "€5.00"}});
        let tip = tip_of(&line).expect("a tip");
        assert_eq!(
            (tip["type"].clone(), tip["value"].clone()),
            (json!("superchat"), json!(5.0 * 1.08))
        );
        let event = Event::new(Platform::Youtube, "c", Kind::Tip, tip);
        let m = of(&event).expect("money");
        assert_eq!((m.formatted.as_str(), m.value), ("€5.00", 5.0 * 1.08));
        let chat = Event::new(Platform::Youtube, "c", Kind::ChatMessage, line);
        assert_eq!(of(&chat), None);
        assert_eq!(
            tip_of(&json!({"monetary": {"amount": 0, "currency": ""}})),
            None
        );
        let kicks =
            tip_of(&json!({"author": {}, "monetary": {"amount": 500, "currency": "KICKS"}}))
                .expect("kicks");
        assert_eq!(
            (kicks["type"].clone(), kicks["formatted"].clone()),
            (json!("kicks"), json!("500 Kicks"))
        );
        assert_eq!(kicks["value"], json!(5.0));
        let gift = Event::new(
            Platform::Tiktok,
            "c",
            Kind::Gift,
            json!({"amount": 100, "currency": "TIKTOK_DIAMONDS"}),
        );
        let m = of(&gift).expect("money");
        assert_eq!(
            (m.formatted.as_str(), m.value),
            ("100 TIKTOK_DIAMONDS", 0.5)
        );
        assert_eq!(comparable(3.0, "XYZ"), 3.0);
    }
}
