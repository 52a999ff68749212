// Pricing helpers.
module.exports = {};
