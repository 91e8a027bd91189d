//! One typed error for the whole protocol, so callers (and the Node addon)
//! can report exactly which client, stage or share went wrong.

use crate::ClientId;

/// Which of a client's two shared secrets a share or request refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum SecretKind {
    /// The self-mask seed `b_u`: revealed only for clients that SURVIVED.
    SelfMaskSeed,
    /// The pairwise-mask secret key `s_u^SK`: revealed only for clients that DROPPED.
    MaskKey,
}

impl std::fmt::Display for SecretKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SecretKind::SelfMaskSeed => "self-mask seed",
            SecretKind::MaskKey => "pairwise-mask secret key",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("invalid parameters: {0}")]
    InvalidParameters(String),

    #[error("message belongs to experiment {got_experiment:?} round {got_round}, expected experiment {expected_experiment:?} round {expected_round} (replayed or misrouted message)")]
    WrongRound {
        expected_experiment: String,
        expected_round: u64,
        got_experiment: String,
        got_round: u64,
    },

    #[error("{operation} is not allowed in stage {stage}")]
    WrongStage {
        operation: &'static str,
        stage: &'static str,
    },

    #[error("client {0} is not part of this round's cohort")]
    UnknownClient(ClientId),

    #[error("client {client} is not a neighbour of client {of}")]
    NotANeighbour { client: ClientId, of: ClientId },

    #[error("duplicate message from client {0}")]
    Duplicate(ClientId),

    #[error("message addressed to client {got} was delivered to client {expected}")]
    WrongRecipient { expected: ClientId, got: ClientId },

    #[error("share from client {sender} to client {recipient} failed authentication (tampered, or encrypted for another round/experiment)")]
    ShareAuthentication {
        sender: ClientId,
        recipient: ClientId,
    },

    #[error("{kind} share of client {owner} held by client {holder} does not match the owner's commitments (wrong or corrupted share)")]
    InvalidShare {
        owner: ClientId,
        holder: ClientId,
        kind: SecretKind,
    },

    #[error("malformed {what} from client {client}: {detail}")]
    Malformed {
        client: ClientId,
        what: &'static str,
        detail: String,
    },

    #[error("key agreement with client {0} produced a low-order (non-contributory) shared secret")]
    NonContributoryKey(ClientId),

    #[error("too few {what}: have {have}, need at least {need}")]
    TooFew {
        what: String,
        have: usize,
        need: usize,
    },

    #[error("the server asked for both the self-mask seed and the pairwise-mask key of client {0}; refusing (this would reveal its input)")]
    ConflictingSecretRequest(ClientId),

    #[error("vector length {got} does not match the round's vector length {expected}")]
    LengthMismatch { expected: usize, got: usize },

    #[error("input element {index} = {value} is not below the modulus 2^{bits}")]
    InputOutOfRange { index: usize, value: u32, bits: u32 },

    #[error("cannot decode message: {0}")]
    Decode(String),

    #[error("cannot encode message: {0}")]
    Encode(String),
}

impl Error {
    /// Stable machine-readable name of the variant (used as the error code
    /// across the Node boundary).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidParameters(_) => "InvalidParameters",
            Error::WrongRound { .. } => "WrongRound",
            Error::WrongStage { .. } => "WrongStage",
            Error::UnknownClient(_) => "UnknownClient",
            Error::NotANeighbour { .. } => "NotANeighbour",
            Error::Duplicate(_) => "Duplicate",
            Error::WrongRecipient { .. } => "WrongRecipient",
            Error::ShareAuthentication { .. } => "ShareAuthentication",
            Error::InvalidShare { .. } => "InvalidShare",
            Error::Malformed { .. } => "Malformed",
            Error::NonContributoryKey(_) => "NonContributoryKey",
            Error::TooFew { .. } => "TooFew",
            Error::ConflictingSecretRequest(_) => "ConflictingSecretRequest",
            Error::LengthMismatch { .. } => "LengthMismatch",
            Error::InputOutOfRange { .. } => "InputOutOfRange",
            Error::Decode(_) => "Decode",
            Error::Encode(_) => "Encode",
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;
