//! The CFI-to-rows compiler against gimli's own evaluation: random valid CFI programs
//! (FDEs with random gaps, advances, CFA register and offset changes, saved / restored rbp,
//! remember / restore state, undefined return addresses) are written as an `.eh_frame` with
//! gimli's writer, compiled into rows, and at random pcs the row in force must say what
//! gimli's unwind table row for that pc says (or "no coverage" outside every FDE).

use gimli::write::{
    Address, CallFrameInstruction, CommonInformationEntry, EhFrame, EndianVec,
    FrameDescriptionEntry, FrameTable,
};
use gimli::{BaseAddresses, Encoding, Format, LittleEndian, Register, RegisterRule, UnwindSection};
use proptest::prelude::*;
use strata_collector_ebpf::{CfaRule, CfiInput, CfiSection, RbpRule, UnwindRow, compile_cfi};

const RBP: Register = Register(6);
const RSP: Register = Register(7);
const RA: Register = Register(16);
const SECTION_ADDRESS: u64 = 0x2000;
const TEXT: u64 = 0x10_0000;

/// One generated instruction, applied at an advance from the previous one.
#[derive(Clone, Debug)]
enum Op {
    Cfa(bool, i32),
    CfaOffset(i32),
    CfaRegister(bool),
    SaveRbp(i32),
    SameRbp,
    RestoreRbp,
    Remember,
    Restore,
    UndefinedRa,
}

fn op() -> impl Strategy<Value = Op> {
    let offset = prop_oneof![
        8 => (1i32..=512).prop_map(|k| k * 8),
        // Out of the rows' range: negative (factored, so multiples of 8) or past 65535.
        1 => prop_oneof![(-8i32..=-1).prop_map(|k| k * 8), 0i32..70_000],
    ];
    prop_oneof![
        3 => (any::<bool>(), offset.clone()).prop_map(|(r, o)| Op::Cfa(r, o)),
        3 => offset.prop_map(Op::CfaOffset),
        1 => any::<bool>().prop_map(Op::CfaRegister),
        2 => prop_oneof![(-16i32..=-1), (-300i32..=-1)].prop_map(|k| Op::SaveRbp(k * 8)),
        1 => Just(Op::SameRbp),
        1 => Just(Op::RestoreRbp),
        1 => Just(Op::Remember),
        1 => Just(Op::Restore),
        1 => Just(Op::UndefinedRa),
    ]
}

/// One FDE: gap before it, length, and (advance, op) pairs.
#[derive(Clone, Debug)]
struct Fde {
    gap: u64,
    len: u32,
    ops: Vec<(u32, Op)>,
}

fn fde() -> impl Strategy<Value = Fde> {
    (
        prop_oneof![Just(0u64), 1u64..64],
        1u32..400,
        prop::collection::vec((0u32..24, op()), 0..24),
    )
        .prop_map(|(gap, len, ops)| Fde { gap, len, ops })
}

/// Writes the FDEs as an `.eh_frame`; returns its bytes and each FDE's `[start, end)`.
fn write(fdes: &[Fde]) -> (Vec<u8>, Vec<(u64, u64)>) {
    let encoding = Encoding {
        format: Format::Dwarf32,
        version: 1,
        address_size: 8,
    };
    let mut table = FrameTable::default();
    let mut cie = CommonInformationEntry::new(encoding, 1, -8, RA);
    cie.add_instruction(CallFrameInstruction::Cfa(RSP, 8));
    cie.add_instruction(CallFrameInstruction::Offset(RA, -8));
    let cie = table.add_cie(cie);
    let mut at = TEXT;
    let mut ranges = Vec::new();
    for f in fdes {
        at += f.gap;
        let mut fde = FrameDescriptionEntry::new(Address::Constant(at), f.len);
        let (mut offset, mut remembered) = (0u32, 0u32);
        for (advance, op) in &f.ops {
            offset = (offset + advance).min(f.len - 1);
            let i = match *op {
                Op::Cfa(rbp, o) => CallFrameInstruction::Cfa(if rbp { RBP } else { RSP }, o),
                Op::CfaOffset(o) => CallFrameInstruction::CfaOffset(o),
                Op::CfaRegister(rbp) => {
                    CallFrameInstruction::CfaRegister(if rbp { RBP } else { RSP })
                }
                Op::SaveRbp(o) => CallFrameInstruction::Offset(RBP, o),
                Op::SameRbp => CallFrameInstruction::SameValue(RBP),
                Op::RestoreRbp => CallFrameInstruction::Restore(RBP),
                // gimli's evaluator holds a few remembered states; real code nests one or two.
                Op::Remember if remembered >= 2 => continue,
                Op::Remember => {
                    remembered += 1;
                    CallFrameInstruction::RememberState
                }
                Op::Restore if remembered > 0 => {
                    remembered -= 1;
                    CallFrameInstruction::RestoreState
                }
                Op::Restore => continue,
                Op::UndefinedRa => CallFrameInstruction::Undefined(RA),
            };
            fde.add_instruction(offset, i);
        }
        table.add_fde(cie, fde);
        ranges.push((at, at + u64::from(f.len)));
        at += u64::from(f.len);
    }
    let mut eh = EhFrame(EndianVec::new(LittleEndian));
    table.write_eh_frame(&mut eh).unwrap();
    (eh.0.into_vec(), ranges)
}

/// What gimli's evaluated row means for the unwinder, decided here independently of the
/// compiler's own classification.
fn expected(row: &gimli::UnwindTableRow<usize>) -> UnwindRow {
    let rbp = match row.register(RBP) {
        None | Some(RegisterRule::SameValue | RegisterRule::Undefined) => RbpRule::Unchanged,
        Some(RegisterRule::Offset(o)) if o % 8 == 0 && (-1024..=1016).contains(&o) => {
            RbpRule::AtCfa((o / 8) as i8)
        }
        Some(_) => RbpRule::Lost,
    };
    if row.register(RA) == Some(RegisterRule::Undefined) {
        return UnwindRow {
            cfa: CfaRule::Outermost,
            rbp,
        };
    }
    assert_eq!(row.register(RA), Some(RegisterRule::Offset(-8)));
    let cfa = match row.cfa() {
        gimli::CfaRule::RegisterAndOffset { register, offset } => {
            match (u16::try_from(*offset), *register == RBP) {
                (Ok(o), false) => CfaRule::Rsp(o),
                (Ok(o), true) => CfaRule::Rbp(o),
                (Err(_), _) => CfaRule::Unsupported,
            }
        }
        gimli::CfaRule::Expression(_) => unreachable!("no expressions are generated"),
    };
    if cfa == CfaRule::Unsupported {
        return UnwindRow {
            cfa,
            rbp: RbpRule::Lost,
        };
    }
    UnwindRow { cfa, rbp }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn rows_agree_with_gimli_at_every_probed_pc(
        fdes in prop::collection::vec(fde(), 1..12),
        probes in prop::collection::vec(any::<u64>(), 64),
    ) {
        let (bytes, ranges) = write(&fdes);
        let rows = compile_cfi(&[CfiInput {
            data: &bytes,
            section: CfiSection::EhFrame,
            address: SECTION_ADDRESS,
            text_address: 0,
        }])
        .unwrap();
        // Strictly increasing pcs, no two equal rows in a row, ends with no coverage.
        let all: Vec<_> = rows.iter().collect();
        prop_assert!(all.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 != w[1].1));
        prop_assert_eq!(all.last().map(|r| r.1), Some(UnwindRow::NO_COVERAGE));
        // The bytes the BPF program reads round-trip.
        prop_assert_eq!(rows.base(), all[0].0);
        for (pc, row) in &all {
            let b = row.to_bytes((pc - all[0].0) as u32);
            prop_assert_eq!(UnwindRow::from_bytes(b), ((pc - all[0].0) as u32, *row));
        }

        let eh = gimli::EhFrame::new(&bytes, LittleEndian);
        let bases = BaseAddresses::default().set_eh_frame(SECTION_ADDRESS);
        let mut ctx = gimli::UnwindContext::new();
        let (lo, hi) = (ranges[0].0, ranges.last().unwrap().1);
        // Every FDE start and end, and random pcs in and around the covered range.
        let mut pcs: Vec<u64> = ranges.iter().flat_map(|&(s, e)| [s, e - 1, e]).collect();
        pcs.extend(probes.iter().map(|p| lo.saturating_sub(8) + p % (hi - lo + 16)));
        for pc in pcs {
            let want = match eh.unwind_info_for_address(
                &bases,
                &mut ctx,
                pc,
                gimli::EhFrame::cie_from_offset,
            ) {
                Ok(row) => Some(expected(row)),
                Err(gimli::Error::NoUnwindInfoForAddress) => {
                    (pc >= lo).then_some(UnwindRow::NO_COVERAGE)
                }
                Err(e) => panic!("gimli: {e}"),
            };
            prop_assert_eq!(rows.lookup(pc), want, "pc {:#x}", pc);
        }
    }
}
