import { describe, expect, it } from 'vitest';
import { yieldToEventLoop } from './async';

describe('yieldToEventLoop', () => {
  it('resumes after a task, not a microtask: messages already queued for this context are handled first', async () => {
    const { port1, port2 } = new MessageChannel();
    let handled = 0;
    port1.onmessage = () => handled++;
    port2.postMessage('cancel'); // e.g. a cancel request waiting while a training step ran
    await Promise.resolve(); // microtasks alone do not deliver it
    expect(handled).toBe(0);
    for (let i = 0; i < 20 && handled === 0; i++) await yieldToEventLoop();
    expect(handled).toBe(1);
    port1.close();
  });
});
