const test = require('node:test');
const assert = require('node:assert');
const { mean } = require('./stats');

test('fixed', () => { assert.strictEqual(mean([1, 2, 3]), 2); assert.strictEqual(mean([5]), 5); });
