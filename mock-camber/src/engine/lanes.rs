//! The outbox's in-flight slots: per-destination lanes, served in turn.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// The destination of a webhook URL, as the in-flight limits count it:
/// scheme, host and port (the default one when the URL names none), in
/// lower case. A URL that does not parse is its own destination.
pub(super) fn destination(url: &str) -> Rc<str> {
    let Ok(uri) = url.parse::<actix_web::http::Uri>() else {
        return Rc::from(url);
    };
    let scheme = uri.scheme_str().unwrap_or("http").to_ascii_lowercase();
    let host = uri.host().unwrap_or("").to_ascii_lowercase();
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "https" { 443 } else { 80 });
    Rc::from(format!("{scheme}://{host}:{port}"))
}

/// The in-flight slots and who waits for them. At most `max_total`
/// attempts are on the wire, at most `max_per` of them to one destination;
/// due deliveries past either limit wait in their destination's lane (they
/// stay pending in the store, so waiting loses nothing), and a free slot
/// goes to the destinations in turn (round-robin), so a receiver that
/// hangs holds `max_per` slots and no more, and a destination with a long
/// queue cannot starve one with a short queue.
///
/// `turns` holds exactly the destinations that have a delivery waiting and
/// a slot of their own free, each once, so taking the next one is O(1).
pub(super) struct Lanes {
    max_total: usize,
    max_per: usize,
    /// Attempts on the wire, by destination (absent = none).
    busy: HashMap<Rc<str>, usize>,
    /// Due deliveries waiting for a slot, by destination, in due order.
    waiting: HashMap<Rc<str>, VecDeque<String>>,
    turns: VecDeque<Rc<str>>,
    in_flight: usize,
}

impl Lanes {
    pub(super) fn new(max_total: usize, max_per: usize) -> Self {
        Self {
            max_total: max_total.max(1),
            max_per: max_per.max(1),
            busy: HashMap::new(),
            waiting: HashMap::new(),
            turns: VecDeque::new(),
            in_flight: 0,
        }
    }

    fn busy(&self, dest: &str) -> usize {
        self.busy.get(dest).copied().unwrap_or(0)
    }

    /// A due delivery joins the end of its destination's lane.
    pub(super) fn push(&mut self, dest: Rc<str>, id: String) {
        let free = self.busy(&dest) < self.max_per;
        let lane = self.waiting.entry(dest.clone()).or_default();
        if lane.is_empty() && free {
            self.turns.push_back(dest);
        }
        lane.push_back(id);
    }

    /// The next delivery to send, its slot taken: the head of the lane
    /// whose turn it is, or none while every slot is taken or every
    /// waiting destination is at its own limit.
    pub(super) fn take(&mut self) -> Option<(Rc<str>, String)> {
        if self.in_flight >= self.max_total {
            return None;
        }
        let dest = self.turns.pop_front()?;
        let lane = self.waiting.get_mut(&dest)?;
        let id = lane.pop_front()?;
        let more = !lane.is_empty();
        if !more {
            self.waiting.remove(&dest);
        }
        let busy = self.busy.entry(dest.clone()).or_insert(0);
        *busy += 1;
        if more && *busy < self.max_per {
            self.turns.push_back(dest.clone());
        }
        self.in_flight += 1;
        Some((dest, id))
    }

    /// An attempt to `dest` is over: its slot is free again.
    pub(super) fn finish(&mut self, dest: &Rc<str>) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(busy) = self.busy.get_mut(dest) else {
            return;
        };
        let was_full = *busy >= self.max_per;
        *busy -= 1;
        if *busy == 0 {
            self.busy.remove(dest);
        }
        if was_full && self.waiting.contains_key(dest) {
            self.turns.push_back(dest.clone());
        }
    }

    /// Forgets every waiting delivery and every slot (a reset).
    pub(super) fn clear(&mut self) {
        *self = Self::new(self.max_total, self.max_per);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn take_all(lanes: &mut Lanes) -> Vec<String> {
        std::iter::from_fn(|| lanes.take())
            .map(|(d, id)| format!("{d} {id}"))
            .collect()
    }

    #[test]
    fn destinations_are_scheme_host_and_port() {
        assert_eq!(
            &*destination("http://Hooks.Example/a?b"),
            "http://hooks.example:80"
        );
        assert_eq!(
            &*destination("https://hooks.example/a"),
            "https://hooks.example:443"
        );
        assert_eq!(
            &*destination("http://127.0.0.1:8080/x"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(&*destination("http://[::1]:81/"), "http://[::1]:81");
        assert_ne!(destination("http://h:1/"), destination("https://h:1/"));
    }

    #[test]
    fn a_destination_at_its_limit_waits_and_free_slots_go_round_robin() {
        let (hung, ok, other): (Rc<str>, Rc<str>, Rc<str>) = (
            "http://hung:80".into(),
            "http://ok:80".into(),
            "http://other:80".into(),
        );
        let mut lanes = Lanes::new(4, 2);
        for i in 0..5 {
            lanes.push(hung.clone(), format!("h{i}"));
        }
        // The hung destination takes its 2 slots, no more.
        assert_eq!(
            take_all(&mut lanes),
            ["http://hung:80 h0", "http://hung:80 h1"]
        );
        // Others get the rest at once, in turn.
        for i in 0..3 {
            lanes.push(ok.clone(), format!("k{i}"));
            lanes.push(other.clone(), format!("o{i}"));
        }
        assert_eq!(
            take_all(&mut lanes),
            ["http://ok:80 k0", "http://other:80 o0"]
        );
        // The pool (4) is full: nothing starts until a slot frees.
        assert_eq!(lanes.take(), None);
        lanes.finish(&ok);
        assert_eq!(take_all(&mut lanes), ["http://ok:80 k1"]);
        // A freed hung slot puts the hung lane back in turn, after the
        // destinations already waiting.
        lanes.finish(&hung);
        lanes.finish(&other);
        assert_eq!(
            take_all(&mut lanes),
            ["http://other:80 o1", "http://ok:80 k2"]
        );
        lanes.finish(&other);
        lanes.finish(&ok);
        assert_eq!(
            take_all(&mut lanes),
            ["http://hung:80 h2", "http://other:80 o2"]
        );
        lanes.clear();
        assert_eq!(lanes.take(), None);
        lanes.push(hung.clone(), "again".into());
        assert_eq!(take_all(&mut lanes), ["http://hung:80 again"]);
    }
}
