const test = require('node:test');
const assert = require('node:assert');
const { average } = require('./report');

test('average', () => assert.strictEqual(average([2, 4]), 3));
