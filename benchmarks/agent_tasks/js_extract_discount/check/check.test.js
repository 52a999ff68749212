const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const { applyDiscount } = require('./pricing');
const { cartTotal } = require('./cart');
const { invoiceLine } = require('./invoice');

test('extracted', () => {
  assert.strictEqual(applyDiscount(200, 10), 180);
  assert.ok(fs.readFileSync('cart.js', 'utf8').includes('applyDiscount'));
  assert.ok(fs.readFileSync('invoice.js', 'utf8').includes('applyDiscount'));
  assert.strictEqual(cartTotal(50, 50), 25);
  assert.strictEqual(invoiceLine(10, 0), 'net 10');
});
