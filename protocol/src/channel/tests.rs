use super::*;

fn key(n: u8) -> IdentityKey {
    IdentityKey::from_seed(&[n; 32])
}

fn member(k: &IdentityKey, publish: bool) -> Member {
    Member { node: k.node_id(), read: true, publish }
}

fn members(list: &[Member]) -> Vec<Member> {
    let mut v = list.to_vec();
    v.sort_by_key(|m| m.node);
    v
}

fn genesis(owner: &IdentityKey, others: &[Member]) -> ChannelState {
    let mut all = vec![member(owner, true)];
    all.extend_from_slice(others);
    ChannelState {
        format: CHANNEL_STATE_VERSION,
        ends: None,
        name: "RILO Asia-Pacific alerts".into(),
        prev: None,
        epoch: 1,
        owner: owner.node_id(),
        deputy: None,
        retain: 30,
        channel: None,
        created: Timestamp(1_000),
        members: members(&all),
        purpose: "regional alerts".into(),
    }
}

fn next(v: &Verified, change: impl FnOnce(&mut ChannelState)) -> ChannelState {
    let mut s = v.state.clone();
    s.prev = Some(v.id);
    s.channel = Some(v.channel);
    s.epoch += 1;
    change(&mut s);
    s
}

fn signed(s: &ChannelState, k: &IdentityKey) -> Verified {
    ChannelState::verify(&s.sign(k)).unwrap()
}

#[test]
fn the_channel_id_is_the_id_of_its_first_state_and_only_its_owner_signs_it() {
    let (hub, ncp) = (key(1), key(2));
    let g = signed(&genesis(&hub, &[member(&ncp, false)]), &hub);
    assert_eq!((g.channel, g.signer), (g.id, hub.node_id()));
    let later = signed(&next(&g, |_| {}), &hub);
    assert_eq!(later.channel, g.channel);
    assert_ne!(later.id, g.id);
    // Somebody else's first state of a channel "owned" by the hub.
    let e = ChannelState::verify(&genesis(&hub, &[member(&ncp, false)]).sign(&ncp)).unwrap_err();
    assert!(matches!(e, StateError::NotOwner { signer, .. } if signer == ncp.node_id()), "{e}");
}

#[test]
fn a_state_names_what_is_wrong_with_its_fields() {
    let (hub, ncp) = (key(1), key(2));
    type Change = Box<dyn Fn(&mut ChannelState)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|s| s.members.reverse()), "ascending"),
        (Box::new(|s| s.members.retain(|m| !m.publish)), "owner"),
        (Box::new(|s| s.name.clear()), "name"),
        (Box::new(|s| s.name = "a\nb".into()), "control characters"),
        (Box::new(|s| s.epoch = 0), "epochs start at 1"),
        (Box::new(|s| s.channel = Some(ChannelId([1; 32]))), "both absent"),
        (Box::new(|s| s.retain = 5000), "retained"),
        (Box::new(|s| s.format = 2), "format 2"),
        (Box::new(|s| s.purpose = "x".repeat(MAX_PURPOSE + 1)), "purpose"),
    ];
    let mut g = genesis(&hub, &[member(&ncp, false)]);
    // The owner is a reader and publisher; the NCP only reads: the owner must stay a member.
    g.members.iter_mut().for_each(|m| m.publish = m.node == hub.node_id());
    for (change, expect) in cases {
        let mut s = g.clone();
        change(&mut s);
        let e = ChannelState::verify(&s.sign(&hub)).unwrap_err();
        assert!(matches!(&e, StateError::Invalid(d) if d.contains(expect)), "{expect}: {e}");
    }
    // A deputy who only reads may not stand in for the owner.
    let mut s = g.clone();
    s.deputy = Some(ncp.node_id());
    assert!(ChannelState::verify(&s.sign(&hub)).unwrap_err().to_string().contains("deputy"));
    // A record of another kind, and a tampered one.
    let other = control::sign(&hub, Kind::Checkpoint, &codec::to_vec(&g));
    assert!(matches!(ChannelState::verify(&other), Err(StateError::Invalid(_))));
    let mut rec = g.sign(&hub);
    let last = rec.len() - 40;
    rec[last] ^= 1;
    assert!(matches!(ChannelState::verify(&rec), Err(StateError::Invalid(_))));
}

#[test]
fn the_book_takes_only_forward_moves_signed_by_the_owner_or_deputy() {
    let (hub, deputy, ncp, other) = (key(1), key(2), key(3), key(4));
    let mut book = Book::new(BookLimits::default());
    let g = signed(&genesis(&hub, &[member(&deputy, true), member(&ncp, true)]), &hub);
    assert_eq!(book.take(g.clone(), Timestamp(10)).unwrap(), vec![(g.channel, 1)]);
    // Taking it again changes nothing.
    assert_eq!(book.check(&g), Ok(Disposition::Known));
    assert_eq!(book.take(g.clone(), Timestamp(11)).unwrap(), vec![]);
    // The owner names a deputy.
    let s2 = signed(&next(&g, |s| s.deputy = Some(deputy.node_id())), &hub);
    assert_eq!(book.take(s2.clone(), Timestamp(20)).unwrap(), vec![(g.channel, 2)]);
    // A member that is neither owner nor deputy cannot change the channel.
    let by_ncp = signed(&next(&s2, |_| {}), &ncp);
    assert!(matches!(book.take(by_ncp, Timestamp(21)), Err(StateError::NotOwner { .. })));
    // The deputy removes the NCP, but may not make itself the owner.
    let grab = signed(
        &next(&s2, |s| {
            s.owner = deputy.node_id();
            s.deputy = Some(hub.node_id());
        }),
        &deputy,
    );
    assert!(matches!(book.check(&grab), Err(StateError::Invalid(d)) if d.contains("owner never changes")));
    // Nor end the channel (every member would destroy its keys), nor skip epochs.
    let close = signed(&next(&s2, |s| s.ends = Some(Timestamp(5))), &deputy);
    assert!(matches!(book.check(&close), Err(StateError::NotOwner { .. })));
    let skip = signed(&next(&s2, |s| s.epoch = u64::MAX), &hub);
    assert!(matches!(book.check(&skip), Err(StateError::NotForward { .. })));
    let s3 = signed(&next(&s2, |s| s.members.retain(|m| m.node != ncp.node_id())), &deputy);
    assert_eq!(book.take(s3.clone(), Timestamp(30)).unwrap(), vec![(g.channel, 3)]);
    assert!(!book.head(&g.channel).unwrap().state.reads(&ncp.node_id()));
    // A replayed old state, and a second successor of epoch 2, change nothing.
    let replay = signed(&next(&g, |s| s.epoch = 9), &hub);
    let fork = signed(
        &next(&s2, |s| {
            s.members.push(member(&other, true));
            s.members.sort_by_key(|m| m.node);
        }),
        &hub,
    );
    for v in [replay, fork] {
        let e = book.take(v, Timestamp(40)).unwrap_err();
        assert!(matches!(e, StateError::NotForward { head: 3, .. }), "{e}");
    }
    let head = book.head(&g.channel).unwrap();
    assert_eq!((head.id, head.state.epoch, head.at), (s3.id, 3, Timestamp(30)));
    // The epochs kept, each with the one after it.
    let (e2, after) = book.at(&g.channel, 2).unwrap();
    assert_eq!((e2.state.epoch, after.map(|t| t.state.epoch)), (2, Some(3)));
}

#[test]
fn a_state_that_arrives_before_its_predecessor_waits_for_it() {
    let (hub, ncp) = (key(1), key(3));
    let mut book = Book::new(BookLimits::default());
    let g = signed(&genesis(&hub, &[member(&ncp, true)]), &hub);
    let s2 = signed(&next(&g, |_| {}), &hub);
    let s3 = signed(&next(&s2, |_| {}), &hub);
    assert_eq!(book.take(s3.clone(), Timestamp(1)).unwrap(), vec![]);
    assert_eq!(book.check(&s3), Ok(Disposition::Known));
    assert_eq!(book.take(s2.clone(), Timestamp(2)).unwrap(), vec![]);
    assert!(book.head(&g.channel).is_none());
    assert_eq!(
        book.take(g.clone(), Timestamp(3)).unwrap(),
        vec![(g.channel, 1), (g.channel, 2), (g.channel, 3)]
    );
    assert_eq!(book.head(&g.channel).unwrap().id, s3.id);
    assert_eq!(book.waiting_bytes, 0);
}

#[test]
fn the_book_is_bounded_in_channels_states_and_bytes() {
    let (hub, ncp) = (key(1), key(3));
    let limits = BookLimits { per_owner: 2, waiting: 1, states_per_channel: 3, ..BookLimits::default() };
    let mut book = Book::new(limits);
    let mut g = genesis(&hub, &[member(&ncp, true)]);
    for i in 0..2 {
        g.name = format!("operation {i}");
        book.take(signed(&g, &hub), Timestamp(1)).unwrap();
    }
    g.name = "operation 3".into();
    assert!(
        matches!(book.take(signed(&g, &hub), Timestamp(1)), Err(StateError::Full(d)) if d.contains("owns 2"))
    );
    // Older epochs go once a channel holds three.
    let (c, _) = book.channels().next().map(|(c, t)| (*c, t.id)).unwrap();
    let mut last = signed(&book.head(&c).unwrap().state.clone(), &hub);
    last.id = book.head(&c).unwrap().id;
    for _ in 0..4 {
        let v = signed(&next(&last, |_| {}), &hub);
        book.take(v.clone(), Timestamp(2)).unwrap();
        last = v;
    }
    assert_eq!(book.head(&c).unwrap().state.epoch, 5);
    assert!(book.at(&c, 2).is_none() && book.at(&c, 3).is_some());
    // One state may wait; the second is refused.
    let far = signed(&next(&signed(&next(&last, |_| {}), &hub), |_| {}), &hub);
    let farther = signed(&next(&far, |_| {}), &hub);
    assert_eq!(book.take(far, Timestamp(3)).unwrap(), vec![]);
    assert!(matches!(book.take(farther, Timestamp(3)), Err(StateError::Full(_))));
}
