const test = require('node:test');
const assert = require('node:assert');
const format = require('./format');
const { line } = require('./invoice');
const { total } = require('./receipt');

test('renamed', () => {
  assert.strictEqual(format.formatPrice, undefined);
  assert.strictEqual(line({ name: 'tea', cents: 250 }), 'tea: $2.50');
  assert.strictEqual(total([{ cents: 100 }, { cents: 5 }]), '$1.05');
});
