const test = require('node:test');
const assert = require('node:assert');
const { receipt } = require('./checkout');

test('receipt', () => {
  assert.strictEqual(receipt([{ price: 3, qty: 2 }]), 'Total: 6');
});
