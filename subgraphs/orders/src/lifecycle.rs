//! The order lifecycle as an explicit state machine. Every command asks it whether its
//! transition is legal before touching anything; an illegal one is a `CONFLICT`.
//!
//! ```text
//! PENDING_PAYMENT ──pay──▶ PAID ──fulfil──▶ FULFILLED
//!        │                  │
//!        ├──cancel──▶ CANCELLED       PAID ──refund──▶ REFUNDED
//!        └──expire──▶ EXPIRED
//! ```
//!
//! Repeating the transition that led to the current state (a second webhook for a paid
//! order, a retried cancel) is not an error: it is reported as [`Transition::AlreadyDone`]
//! so that out-of-order and repeated deliveries converge to the same state.

use std::fmt;

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, async_graphql::Enum)]
pub enum OrderStatus {
    PendingPayment,
    Paid,
    Fulfilled,
    Cancelled,
    Expired,
    Refunded,
}

/// What happens to an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderAction {
    Pay,
    Fulfil,
    Cancel,
    Expire,
    Refund,
}

/// The state machine's answer to an action in a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// Legal: the order moves to this status.
    To(OrderStatus),
    /// The order is already where this action leads (a repeat): nothing to do.
    AlreadyDone,
    /// Illegal from this status.
    Refused,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::PendingPayment,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
        OrderStatus::Refunded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PendingPayment => "PENDING_PAYMENT",
            OrderStatus::Paid => "PAID",
            OrderStatus::Fulfilled => "FULFILLED",
            OrderStatus::Cancelled => "CANCELLED",
            OrderStatus::Expired => "EXPIRED",
            OrderStatus::Refunded => "REFUNDED",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == value)
    }

    /// Whether the order still holds reserved stock (released when it ends unpaid).
    pub fn holds_reservation(self) -> bool {
        self == OrderStatus::PendingPayment
    }

    /// What `action` does to an order in this status.
    pub fn on(self, action: OrderAction) -> Transition {
        use OrderAction::*;
        use OrderStatus::*;
        match (self, action) {
            (PendingPayment, Pay) => Transition::To(Paid),
            (PendingPayment, Cancel) => Transition::To(Cancelled),
            (PendingPayment, Expire) => Transition::To(Expired),
            (Paid, Fulfil) => Transition::To(Fulfilled),
            (Paid, Refund) => Transition::To(Refunded),
            // Repeats: the order is already where the action leads, or beyond it on the
            // same path (a late "paid" webhook for a fulfilled or refunded order).
            (Paid | Fulfilled | Refunded, Pay)
            | (Fulfilled, Fulfil)
            | (Cancelled, Cancel)
            | (Expired, Expire)
            | (Refunded, Refund) => Transition::AlreadyDone,
            _ => Transition::Refused,
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::{OrderAction::*, OrderStatus::*, *};

    #[test]
    fn the_lifecycle_allows_exactly_the_documented_transitions() {
        let legal = [
            (PendingPayment, Pay, Paid),
            (PendingPayment, Cancel, Cancelled),
            (PendingPayment, Expire, Expired),
            (Paid, Fulfil, Fulfilled),
            (Paid, Refund, Refunded),
        ];
        for status in OrderStatus::ALL {
            for action in [Pay, Fulfil, Cancel, Expire, Refund] {
                let expected = legal
                    .iter()
                    .find(|(from, on, _)| *from == status && *on == action)
                    .map(|(_, _, to)| Transition::To(*to));
                match expected {
                    Some(transition) => assert_eq!(status.on(action), transition, "{status} {action:?}"),
                    None => assert!(
                        !matches!(status.on(action), Transition::To(_)),
                        "{status} {action:?} must not move the order"
                    ),
                }
            }
        }
    }

    #[test]
    fn repeats_converge_and_contradictions_are_refused() {
        assert_eq!(Paid.on(Pay), Transition::AlreadyDone, "a second payment webhook");
        assert_eq!(Fulfilled.on(Pay), Transition::AlreadyDone, "a late payment webhook");
        assert_eq!(Cancelled.on(Cancel), Transition::AlreadyDone);
        assert_eq!(
            Cancelled.on(Pay),
            Transition::Refused,
            "a cancelled order cannot be paid"
        );
        assert_eq!(Expired.on(Pay), Transition::Refused);
        assert_eq!(
            Paid.on(Cancel),
            Transition::Refused,
            "paid orders are refunded, not cancelled"
        );
        assert_eq!(PendingPayment.on(Refund), Transition::Refused);
        assert_eq!(Refunded.on(Fulfil), Transition::Refused);
    }

    #[test]
    fn statuses_round_trip_through_their_stored_names() {
        for status in OrderStatus::ALL {
            assert_eq!(OrderStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(OrderStatus::parse("SHIPPED"), None);
        assert!(PendingPayment.holds_reservation());
        assert!(!Paid.holds_reservation());
    }
}
