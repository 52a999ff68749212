const test = require('node:test');
const assert = require('node:assert');
const { total } = require('./cart');

test('fixed', () => {
  assert.strictEqual(total([{ price: 2, qty: 3 }, { price: 1, qty: 1 }]), 7);
  assert.strictEqual(total([]), 0);
});
