// SPDX-License-Identifier: MIT
// slither-disable-next-line pragma (interfaces accept any compiler from 0.8.24, while the contracts pin 0.8.30)
pragma solidity ^0.8.24;

/// @title IMilestoneEscrow
/// @notice Escrow for many milestone grants at once. A grant pays its recipient one milestone at
/// a time, when M of its N attestors approve the same evidence hash before the milestone's
/// deadline. Money for a milestone that misses its deadline goes back to the grant's funders.
/// @dev Every state change emits an event, and the events together are enough to rebuild every
/// grant, contribution, payout and credit without reading storage.
interface IMilestoneEscrow {
    /*//////////////////////////////////////////////////////////////
                                 TYPES
    //////////////////////////////////////////////////////////////*/

    /// @notice Lifecycle of a grant, derived from its funding and its milestones.
    /// @dev Funding: accepting money until the funding deadline.
    /// FundingFailed: the funding deadline passed before the grant was fully funded, so each
    /// funder may take back their contribution.
    /// Active: fully funded, with at least one milestone neither released nor reclaimed.
    /// Completed: fully funded, and every milestone released or reclaimed.
    enum GrantStatus {
        Funding,
        FundingFailed,
        Active,
        Completed
    }

    /// @notice Lifecycle of one milestone.
    /// @dev A rejected evidence hash sends the milestone back to AwaitingEvidence.
    enum MilestoneStatus {
        AwaitingEvidence,
        EvidenceSubmitted,
        Released,
        Reclaimed
    }

    /// @notice Why money left the escrow, or was credited for later withdrawal.
    enum PayoutKind {
        Release,
        Reclaim,
        Refund
    }

    /// @notice Whether a typed signature can still be used.
    enum SignatureState {
        Unused,
        Used,
        Revoked
    }

    /// @notice An attestor's offline approval, as a relayer submits it.
    /// @param attestor The attestor who signed; a contract attestor signs through ERC-1271.
    /// @param expiry Unix time from which the signature is no longer valid.
    /// @param signature The EIP-712 signature of a `MilestoneApproval`.
    struct SignedApproval {
        address attestor;
        uint64 expiry;
        bytes signature;
    }

    /// @notice One milestone as the grant maker writes it.
    /// @param amount Payment for the milestone, in the token's smallest unit.
    /// @param deadline Unix time from which the milestone can no longer be approved and can be
    /// reclaimed instead.
    struct MilestoneTerms {
        uint128 amount;
        uint64 deadline;
    }

    /// @notice Everything a grant maker fixes when creating a grant. None of it can change later.
    /// @param recipient The NGO's payout address.
    /// @param token The ERC-20 token of the grant, or `address(0)` for ETH.
    /// @param fundingDeadline Unix time from which the grant accepts no more funding. It must be
    /// earlier than every milestone deadline.
    /// @param threshold Number of attestor approvals (M) that releases a milestone.
    /// @param attestors The N attestors, unique and non-zero.
    /// @param milestones The milestones, in the order their indices refer to.
    /// @param termsHash Hash of the off-chain grant agreement.
    /// @param termsUri Where the off-chain grant agreement can be read.
    struct GrantTerms {
        address recipient;
        address token;
        uint64 fundingDeadline;
        uint8 threshold;
        address[] attestors;
        MilestoneTerms[] milestones;
        bytes32 termsHash;
        string termsUri;
    }

    /// @notice The grant's books and fixed parameters, as returned by {getGrant}.
    /// @dev `funded == released + reclaimed + held` after every transaction, where `held` is what
    /// the escrow still keeps for this grant. `reclaimed` counts both milestone reclaims and
    /// refunds of a grant that failed to be fully funded.
    struct GrantView {
        address recipient;
        address token;
        uint64 fundingDeadline;
        uint8 threshold;
        uint8 attestorCount;
        uint8 milestoneCount;
        uint16 funderCount;
        GrantStatus status;
        uint256 total;
        uint256 funded;
        uint256 released;
        uint256 reclaimed;
        uint256 held;
    }

    /// @notice One milestone's state, as returned by {getMilestone}.
    /// @param approvals Bitmap of the attestors, by index, who approved the current evidence.
    /// @param rejections Bitmap of the attestors, by index, who rejected the current evidence.
    struct MilestoneView {
        uint256 amount;
        uint64 deadline;
        MilestoneStatus status;
        bytes32 evidenceHash;
        uint16 approvals;
        uint16 rejections;
        uint8 approvalCount;
        uint8 rejectionCount;
    }

    /*//////////////////////////////////////////////////////////////
                                 EVENTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Emitted when a grant is created, with its full terms.
    event GrantCreated(uint256 indexed grantId, address indexed creator, address indexed recipient, GrantTerms terms);

    /// @notice Emitted when `payer` adds `amount` to a grant on behalf of `funder`.
    /// @param totalFunded The grant's funding after this contribution.
    event GrantFunded(
        uint256 indexed grantId, address indexed funder, address indexed payer, uint256 amount, uint256 totalFunded
    );

    /// @notice Emitted when the recipient submits evidence for a milestone. Any approvals and
    /// rejections of earlier evidence for the milestone are cleared.
    event EvidenceSubmitted(
        uint256 indexed grantId, uint256 indexed milestoneIndex, address indexed submitter, bytes32 evidenceHash, string evidenceUri
    );

    /// @notice Emitted when an attestor approves a milestone's current evidence.
    /// @param approvalCount Approvals of this evidence so far, this one included.
    event MilestoneApproved(
        uint256 indexed grantId, uint256 indexed milestoneIndex, address indexed attestor, bytes32 evidenceHash, uint256 approvalCount
    );

    /// @notice Emitted when an attestor rejects a milestone's current evidence.
    /// @param reasonHash Hash of the attestor's written reasons, kept off-chain.
    /// @param rejectionCount Rejections of this evidence so far, this one included.
    event MilestoneRejected(
        uint256 indexed grantId,
        uint256 indexed milestoneIndex,
        address indexed attestor,
        bytes32 evidenceHash,
        bytes32 reasonHash,
        uint256 rejectionCount
    );

    /// @notice Emitted when rejections make the quorum for an evidence hash impossible. The hash
    /// can never be submitted again for this milestone, and the milestone awaits new evidence.
    event EvidenceRejected(uint256 indexed grantId, uint256 indexed milestoneIndex, bytes32 evidenceHash);

    /// @notice Emitted when a milestone reaches its quorum and its amount is paid or credited to
    /// the recipient.
    event MilestoneReleased(
        uint256 indexed grantId, uint256 indexed milestoneIndex, address indexed recipient, bytes32 evidenceHash, uint256 amount
    );

    /// @notice Emitted when a milestone at or past its deadline is reclaimed for the funders.
    event MilestoneReclaimed(uint256 indexed grantId, uint256 indexed milestoneIndex, address indexed caller, uint256 amount);

    /// @notice Emitted when a funder of a grant that failed to be fully funded gets back their
    /// contribution.
    event FundingRefunded(uint256 indexed grantId, address indexed funder, uint256 amount);

    /// @notice Emitted for every amount that leaves a grant: once per release, once per funder
    /// share of a reclaim and once per refund.
    /// @param milestoneIndex The milestone paid or reclaimed; `type(uint256).max` for a refund.
    /// @param credited True when the transfer failed and the amount was credited to `account`
    /// for a later {withdraw} instead.
    event Payout(
        uint256 indexed grantId,
        address indexed account,
        address indexed token,
        PayoutKind kind,
        uint256 milestoneIndex,
        uint256 amount,
        bool credited
    );

    /// @notice Emitted when `relayer` submits a typed signature of `signer` for a grant. The
    /// action itself emits its usual event, such as {MilestoneApproved}, naming the signer.
    /// @param digest The EIP-712 digest that was signed; it can never be used again.
    event SignatureRelayed(uint256 indexed grantId, address indexed signer, address indexed relayer, bytes32 digest);

    /// @notice Emitted when `signer` revokes one of its unused typed signatures.
    event SignatureRevoked(address indexed signer, bytes32 digest);

    /// @notice Emitted when `account` withdraws its credit in `token` to `to`.
    event CreditWithdrawn(address indexed account, address indexed token, address indexed to, uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                 ERRORS
    //////////////////////////////////////////////////////////////*/

    /// @notice The grant terms name no recipient.
    error ZeroRecipient();
    /// @notice The grant terms have no milestones, or more than the maximum.
    error InvalidMilestoneCount(uint256 count, uint256 max);
    /// @notice The grant terms have no attestors, or more than the maximum.
    error InvalidAttestorCount(uint256 count, uint256 max);
    /// @notice The threshold is zero or larger than the number of attestors.
    error InvalidThreshold(uint256 threshold, uint256 attestorCount);
    /// @notice An attestor is the zero address.
    error ZeroAttestor(uint256 attestorIndex);
    /// @notice An attestor appears twice in the grant terms.
    error DuplicateAttestor(address attestor);
    /// @notice A milestone amount is zero.
    error ZeroMilestoneAmount(uint256 milestoneIndex);
    /// @notice The milestone amounts add up to more than the escrow's books can record.
    error GrantTotalTooLarge(uint256 total, uint256 max);
    /// @notice The funding deadline is not in the future.
    error FundingDeadlineNotInFuture(uint64 fundingDeadline, uint256 currentTime);
    /// @notice A milestone deadline is not later than the funding deadline.
    error MilestoneDeadlineTooEarly(uint256 milestoneIndex, uint64 deadline, uint64 fundingDeadline);

    /// @notice No grant has this id.
    error GrantNotFound(uint256 grantId);
    /// @notice No milestone of the grant has this index.
    error MilestoneNotFound(uint256 grantId, uint256 milestoneIndex, uint256 milestoneCount);

    /// @notice An amount of zero was given.
    error ZeroAmount();
    /// @notice A funder is the zero address.
    error ZeroFunder();
    /// @notice The grant stopped accepting funding at its funding deadline.
    error FundingClosed(uint256 grantId, uint64 fundingDeadline);
    /// @notice The contribution would take the grant past the sum of its milestone amounts.
    error FundingExceedsTotal(uint256 grantId, uint256 amount, uint256 remaining);
    /// @notice The grant already has the maximum number of distinct funders.
    error TooManyFunders(uint256 grantId, uint256 max);
    /// @notice For an ETH grant, the ETH sent differs from the amount stated.
    error EthAmountMismatch(uint256 sent, uint256 amount);
    /// @notice ETH was sent to fund an ERC-20 grant.
    error UnexpectedEth(uint256 sent);
    /// @notice The escrow received a different amount of tokens than stated, as with a
    /// fee-on-transfer token.
    error TokenAmountMismatch(address token, uint256 expected, uint256 received);

    /// @notice The action needs a fully funded grant.
    error GrantNotFullyFunded(uint256 grantId, uint256 funded, uint256 total);
    /// @notice Refunds are open only once the funding deadline passed without full funding.
    error RefundNotAvailable(uint256 grantId);
    /// @notice The funder has nothing to take back from the grant.
    error NothingToRefund(uint256 grantId, address funder);

    /// @notice Only the grant's recipient may submit evidence.
    error NotRecipient(uint256 grantId, address caller);
    /// @notice Only one of the grant's attestors may approve or reject.
    error NotAttestor(uint256 grantId, address caller);
    /// @notice An evidence hash of zero was given.
    error ZeroEvidenceHash();
    /// @notice The milestone is already released or reclaimed.
    error MilestoneAlreadySettled(uint256 grantId, uint256 milestoneIndex, MilestoneStatus status);
    /// @notice The milestone has no evidence awaiting attestation.
    error NoPendingEvidence(uint256 grantId, uint256 milestoneIndex);
    /// @notice The evidence hash is already the milestone's current evidence.
    error EvidenceAlreadySubmitted(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash);
    /// @notice The evidence hash was rejected for this milestone and can never be paid.
    error EvidenceHashRejected(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash);
    /// @notice The attestation names an evidence hash other than the milestone's current one.
    error EvidenceMismatch(uint256 grantId, uint256 milestoneIndex, bytes32 current, bytes32 given);
    /// @notice The attestor already approved or rejected the current evidence.
    error AlreadyAttested(uint256 grantId, uint256 milestoneIndex, address attestor);
    /// @notice The milestone's deadline has passed: it can no longer get evidence or approvals.
    error MilestoneDeadlinePassed(uint256 grantId, uint256 milestoneIndex, uint64 deadline);
    /// @notice The milestone's deadline has not passed yet, so it cannot be reclaimed.
    error MilestoneDeadlineNotReached(uint256 grantId, uint256 milestoneIndex, uint64 deadline);

    /// @notice A relayed batch holds no signatures.
    error EmptySignatureBatch();
    /// @notice The typed signature is expired: `block.timestamp >= expiry`.
    error SignatureExpired(address signer, uint64 expiry);
    /// @notice The signature is not `signer`'s valid signature of the typed data, for the ECDSA
    /// rules (65 bytes, low s) or for the signer's ERC-1271 `isValidSignature`.
    error InvalidSignature(address signer);
    /// @notice The typed signature was already used once.
    error SignatureAlreadyUsed(address signer, bytes32 digest);
    /// @notice The signer revoked this typed signature.
    error SignatureWasRevoked(address signer, bytes32 digest);

    /// @notice The caller has no credit in this token.
    error NoCredit(address account, address token);
    /// @notice A withdrawal to the zero address.
    error ZeroWithdrawalAddress();

    /*//////////////////////////////////////////////////////////////
                                 CONSTANTS
    //////////////////////////////////////////////////////////////*/

    /// @notice Largest number of milestones in one grant.
    // slither-disable-next-line naming-convention (the getter of a public constant keeps its UPPER_CASE name)
    function MAX_MILESTONES() external view returns (uint256);

    /// @notice Largest number of attestors in one grant.
    // slither-disable-next-line naming-convention (the getter of a public constant keeps its UPPER_CASE name)
    function MAX_ATTESTORS() external view returns (uint256);

    /// @notice Largest number of distinct funders of one grant. A reclaim pays each funder in
    /// one transaction, so this bounds its gas.
    // slither-disable-next-line naming-convention (the getter of a public constant keeps its UPPER_CASE name)
    function MAX_FUNDERS() external view returns (uint256);

    /// @notice Gas forwarded with each ETH payout. A recipient that needs more is credited.
    // slither-disable-next-line naming-convention (the getter of a public constant keeps its UPPER_CASE name)
    function ETH_PAYOUT_GAS() external view returns (uint256);

    /*//////////////////////////////////////////////////////////////
                              GRANT MAKERS
    //////////////////////////////////////////////////////////////*/

    /// @notice Creates a grant with fixed `terms`.
    /// @dev Emits {GrantCreated}. Reverts with the matching error for each invalid term.
    /// @return grantId The new grant's id; ids start at 1.
    function createGrant(GrantTerms calldata terms) external returns (uint256 grantId);

    /// @notice Creates a grant and funds it with `amount` from the caller, in one transaction.
    /// @dev Emits {GrantCreated} and {GrantFunded}. For an ETH grant, `msg.value` must equal
    /// `amount`; for an ERC-20 grant the caller must have approved the escrow for `amount`.
    function createAndFundGrant(GrantTerms calldata terms, uint256 amount) external payable returns (uint256 grantId);

    /// @notice Adds `amount` to a grant from the caller, recorded as the caller's contribution.
    /// @dev Emits {GrantFunded}. Funding is open while `block.timestamp < fundingDeadline` and
    /// until the grant holds the sum of its milestone amounts.
    function fund(uint256 grantId, uint256 amount) external payable;

    /// @notice Adds `amount` to a grant from the caller, recorded as `funder`'s contribution.
    /// Refunds and reclaimed shares then go to `funder`.
    /// @dev Emits {GrantFunded}. Used by the donation registry to make a donor a co-funder.
    function fundFor(uint256 grantId, address funder, uint256 amount) external payable;

    /// @notice Returns `funder`'s whole contribution to a grant that was not fully funded by its
    /// funding deadline. Anyone may call it; the money goes only to `funder`.
    /// @dev Emits {FundingRefunded} and {Payout}. A failed transfer is credited to `funder`.
    function refund(uint256 grantId, address funder) external;

    /*//////////////////////////////////////////////////////////////
                              MILESTONES
    //////////////////////////////////////////////////////////////*/

    /// @notice Submits evidence for a milestone. Only the grant's recipient may call it, and
    /// only on a fully funded grant before the milestone's deadline.
    /// @dev Emits {EvidenceSubmitted}. Clears the approvals and rejections of earlier evidence.
    /// @param evidenceHash Hash of the evidence; the evidence itself stays off-chain.
    /// @param evidenceUri Where attestors can read the evidence. It must not contain personal data.
    function submitEvidence(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash, string calldata evidenceUri)
        external;

    /// @notice Approves the milestone's current evidence as the calling attestor. The approval
    /// that reaches the threshold releases the milestone in the same transaction.
    /// @dev Emits {MilestoneApproved}, then {MilestoneReleased} and {Payout} at quorum.
    /// @param evidenceHash Must equal the current evidence hash, so an approval never counts for
    /// evidence the attestor did not see.
    function approve(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash) external;

    /// @notice Rejects the milestone's current evidence as the calling attestor. Once so many
    /// attestors reject that the threshold can no longer be reached, the evidence hash is
    /// rejected for good and the milestone awaits new evidence.
    /// @dev Emits {MilestoneRejected}, then {EvidenceRejected} when the quorum becomes impossible.
    function reject(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash, bytes32 reasonHash) external;

    /// @notice Returns an unreleased milestone's amount to the funders, in proportion to their
    /// contributions, once its deadline has passed. Anyone may call it.
    /// @dev Emits {MilestoneReclaimed} and one {Payout} per funder. The rounding remainder goes
    /// to the grant's first funder. A failed transfer is credited to that funder.
    function reclaim(uint256 grantId, uint256 milestoneIndex) external;

    /*//////////////////////////////////////////////////////////////
                           TYPED SIGNATURES
    //////////////////////////////////////////////////////////////*/

    /// @notice Counts attestors' offline approvals of the milestone's current evidence. Anyone
    /// may relay them. Each counts exactly as an on-chain {approve} by its attestor, and the
    /// approval that reaches the threshold releases the milestone in the same transaction.
    /// @dev Each signature is an EIP-712 `MilestoneApproval(address attestor,uint256 grantId,
    /// uint256 milestoneIndex,bytes32 evidenceHash,uint64 expiry)` in this contract's domain.
    /// Emits {SignatureRelayed} and then {MilestoneApproved} per signature, then {MilestoneReleased}
    /// and {Payout} at quorum. Any invalid, expired, used, revoked or duplicate signature, and
    /// any signature after the one that released the milestone, reverts the whole batch.
    function approveWithSignatures(
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        SignedApproval[] calldata approvals
    ) external;

    /// @notice Submits evidence signed offline by the grant's recipient. Anyone may relay it.
    /// @dev The signature is an EIP-712 `EvidenceSubmission(address recipient,uint256 grantId,
    /// uint256 milestoneIndex,bytes32 evidenceHash,string evidenceUri,uint64 expiry)`. Emits
    /// {EvidenceSubmitted} with the recipient as submitter, and {SignatureRelayed}.
    function submitEvidenceWithSignature(
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        string calldata evidenceUri,
        uint64 expiry,
        bytes calldata signature
    ) external;

    /// @notice Revokes one of the caller's unused typed signatures, given its EIP-712 digest.
    /// @dev Emits {SignatureRevoked}. A digest names its signer, so a caller can only revoke
    /// its own signatures.
    function revokeSignature(bytes32 digest) external;

    /// @notice The EIP-712 digest an attestor signs to approve `evidenceHash` offline.
    function hashMilestoneApproval(
        address attestor,
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        uint64 expiry
    ) external view returns (bytes32);

    /// @notice The EIP-712 digest a recipient signs to submit evidence offline.
    function hashEvidenceSubmission(
        address recipient,
        uint256 grantId,
        uint256 milestoneIndex,
        bytes32 evidenceHash,
        string calldata evidenceUri,
        uint64 expiry
    ) external view returns (bytes32);

    /// @notice Whether `signer`'s signature of `digest` is unused, used or revoked.
    function signatureState(address signer, bytes32 digest) external view returns (SignatureState);

    /*//////////////////////////////////////////////////////////////
                                 CREDITS
    //////////////////////////////////////////////////////////////*/

    /// @notice Withdraws the caller's whole credit in `token` to `to`.
    /// @dev Emits {CreditWithdrawn}. Reverts if the transfer to `to` fails, so the credit is kept.
    function withdraw(address token, address to) external returns (uint256 amount);

    /*//////////////////////////////////////////////////////////////
                                  VIEWS
    //////////////////////////////////////////////////////////////*/

    /// @notice Number of grants created so far; the latest grant's id.
    function grantCount() external view returns (uint256);

    /// @notice The grant's fixed parameters, books and status. The creator, terms hash and
    /// terms URI are only in the {GrantCreated} event.
    function getGrant(uint256 grantId) external view returns (GrantView memory);

    /// @notice One milestone's terms and attestation state.
    function getMilestone(uint256 grantId, uint256 milestoneIndex) external view returns (MilestoneView memory);

    /// @notice The grant's attestors, in the order of their bitmap indices.
    function getAttestors(uint256 grantId) external view returns (address[] memory);

    /// @notice The grant's funders, in the order of their first contribution.
    function getFunders(uint256 grantId) external view returns (address[] memory);

    /// @notice `funder`'s total contribution to the grant, refunded or not.
    function contributionOf(uint256 grantId, address funder) external view returns (uint256);

    /// @notice Whether `funder`'s contribution to a grant that failed funding was refunded.
    function isRefunded(uint256 grantId, address funder) external view returns (bool);

    /// @notice Whether `evidenceHash` was rejected for the milestone.
    function isEvidenceRejected(uint256 grantId, uint256 milestoneIndex, bytes32 evidenceHash) external view returns (bool);

    /// @notice `account`'s credit in `token`, waiting for {withdraw}.
    function creditOf(address account, address token) external view returns (uint256);

    /// @notice Sum of all credits in `token`.
    function totalCredits(address token) external view returns (uint256);

    /// @notice Sum of what all grants in `token` still hold.
    function totalHeld(address token) external view returns (uint256);
}
