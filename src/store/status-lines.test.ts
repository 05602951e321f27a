import { describe, expect, it } from 'vitest';
import { bestBadgeText, cancelledNote, canResume, outcomeRunNote, outcomeWord, removedNotice, retentionLine, runStatusLabel, storedRunLine, valAt } from './status-lines';

const ck = { step: 40 } as never;

describe('run status (cancelled ≠ paused)', () => {
  it('labels and offers Resume only for runs stopped part way', () => {
    expect(runStatusLabel({ status: 'cancelled', active: false })).toBe('cancelled');
    expect(runStatusLabel({ status: 'paused', active: false })).toBe('paused');
    expect(runStatusLabel({ status: 'running', active: true })).toBe('training now');
    expect(canResume({ status: 'cancelled', active: false, latestCheckpoint: ck })).toBe(false);
    expect(canResume({ status: 'finished', active: false, latestCheckpoint: ck })).toBe(false);
    expect(canResume({ status: 'paused', active: false, latestCheckpoint: ck })).toBe(true);
    expect(canResume({ status: 'interrupted', active: false, latestCheckpoint: null })).toBe(false);
    expect(cancelledNote({ status: 'cancelled', active: false, latestCheckpoint: ck })).toMatch(/^Cancelled at step 40\. .*Rewind/);
    expect(cancelledNote({ status: 'paused', active: false, latestCheckpoint: ck })).toBeNull();
  });

  it('names the run each line describes', () => {
    expect(storedRunLine('capitals', 172, 0.76634, 0.8)).toBe('Stored run “capitals”: 172 steps · last training loss 0.7663 · best validation loss 0.8000');
    expect(outcomeRunNote({ runId: 'a', name: 'number-words' }, { runId: 'b', name: 'capitals' })).toBe('of “number-words”, the run trained here (the charts show “capitals”)');
    expect(outcomeRunNote({ runId: 'a', name: 'x' }, { runId: 'a', name: 'x' })).toBeNull();
    expect(outcomeRunNote({ runId: 'a', name: 'x' }, { runId: 'b', name: 'x' })).toBe('of the run trained here, “x” (the charts show another run of the same name, opened under Runs)');
    expect(outcomeWord({ stoppedBy: null, reason: 'cancelled' })).toBe('Cancelled');
    expect(outcomeWord({ stoppedBy: 'patience', reason: 'done' })).toBe('Ended');
  });
});

describe('checkpoint figures name their step', () => {
  it('says the step a validation loss was measured at when it is another one', () => {
    expect(valAt({ step: 55, valLoss: 1.03741, valStep: 50 })).toBe('1.0374 (step 50)');
    expect(valAt({ step: 50, valLoss: 1.03741, valStep: 50 })).toBe('1.0374');
    expect(valAt({ step: 50, valLoss: 1.03741 })).toBe('1.0374');
    expect(valAt({ step: 50, valLoss: null, valStep: null })).toBe('–');
    expect(bestBadgeText({ step: 172, valLoss: 0.8, valStep: 150 })).toBe('best: val 0.8000 (measured at step 150)');
    expect(bestBadgeText({ step: 150, valLoss: 0.8, valStep: 150 })).toBe('best: val 0.8000');
  });

  it('explains retention and what it removed', () => {
    expect(retentionLine(3)).toMatch(/best by validation loss, the recommended one.*newest 3/);
    expect(removedNotice([30, 10, 20], 'run a')).toBe('Removed the checkpoints at steps 10, 20 and 30 of “run a”: neither best, recommended, pinned nor among the newest.');
    expect(removedNotice([10], null)).toMatch(/^Removed the checkpoint at step 10:/);
    expect(removedNotice([], null)).toBeNull();
  });
});
