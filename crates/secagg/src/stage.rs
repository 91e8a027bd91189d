//! The four SecAgg+ stages, shared by the client and server state machines so
//! both name a stage the same way in their "message for the wrong stage" errors.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    AdvertiseKeys,
    ShareKeys,
    MaskedInput,
    Unmask,
    Done,
}

impl Stage {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Stage::AdvertiseKeys => "advertise-keys",
            Stage::ShareKeys => "share-keys",
            Stage::MaskedInput => "masked-input",
            Stage::Unmask => "unmasking",
            Stage::Done => "done",
        }
    }
}
