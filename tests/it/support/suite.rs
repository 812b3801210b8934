//! One suite, written once, run against every store: its cases are ordinary async functions
//! that take the store's factory ([`Make`]), and [`store_suite!`] writes a `#[tokio::test]`
//! for each case and each store.

use std::future::Future;

/// A store's factory: an async function from the case's settings (`Arg`: lifetimes, a
/// lockout policy) to what the case runs against (`Out`: a registry, a served app).
pub trait Make<Arg, Out>: Fn(Arg) -> Self::Fut {
    type Fut: Future<Output = Out>;
}

impl<F, Arg, Out, Fut> Make<Arg, Out> for F
where
    F: Fn(Arg) -> Fut,
    Fut: Future<Output = Out>,
{
    type Fut = Fut;
}

/// Runs every case against every store: for each store a module of thin `#[tokio::test]`
/// wrappers, one per case and named as it, each calling the case with the store's factory.
///
/// A store is `module`, whose factory is the function of that name beside the suite, or
/// `module = factory`; it may carry attributes (`#[cfg(...)]`). A case is an
/// `async fn(impl Make<Arg, Out>)` beside the suite. So
///
/// ```ignore
/// store_suite! {
///     stores: [memory, #[cfg(feature = "cluster")] cluster, big_memory = memory],
///     cases: [issued_token_resolves_to_its_caller],
/// }
/// ```
///
/// writes the tests `memory::issued_token_resolves_to_its_caller`,
/// `cluster::issued_token_resolves_to_its_caller` (with the feature `cluster`) and
/// `big_memory::issued_token_resolves_to_its_caller`, the last calling
/// `issued_token_resolves_to_its_caller(memory)`.
macro_rules! store_suite {
    (
        stores: [$($(#[$attr:meta])* $module:ident $(= $factory:ident)?),+ $(,)?],
        cases: $cases:tt $(,)?
    ) => {
        $(
            $(#[$attr])*
            $crate::support::store_suite!(@store $module ($($factory)?) $cases);
        )+
    };
    (@store $module:ident () $cases:tt) => {
        $crate::support::store_suite!(@store $module ($module) $cases);
    };
    (@store $module:ident ($factory:ident) [$($case:ident),+ $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    super::$case(super::$factory).await;
                }
            )+
        }
    };
}

pub(crate) use store_suite;
